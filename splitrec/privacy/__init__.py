"""Privacy for what crosses between parties: embedding DP at feature parties,
label DP and gradient defenses at the label party, the accountant that turns
noise into ε, and the label-leakage attacks that measure what still leaks."""

"""When a job may aggregate securely: the one check the coordinator's
handshake and the label party both call."""

from __future__ import annotations


def secure_problem(
    secure: bool, aggregation: str, feature_parties: int, compression: str
) -> str | None:
    """Why a job of these settings cannot aggregate securely (None when it can,
    or when it does not ask to)."""
    if not secure:
        return None
    if aggregation == "concat":
        return (
            "secure aggregation gives the label party only the sum of the feature "
            "parties' outputs, which a concat fuse cannot take; set "
            "model.aggregation.method to sum or average in the label party's config"
        )
    if feature_parties < 2:
        return (
            f"secure aggregation hides each feature party's output in the sum over "
            f"two or more of them, but this job has {feature_parties}; add a feature "
            "party or set model.aggregation.secure to false in the label party's "
            "config"
        )
    if compression != "none":
        return (
            f"compression ({compression}) of masked tensors is meaningless: masked "
            "values look random and must arrive exactly for the masks to cancel; "
            "set compression to none in the job config or turn secure aggregation "
            "off"
        )
    return None

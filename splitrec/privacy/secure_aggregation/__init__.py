"""Secure aggregation: the label party learns the sum of the feature parties'
hidden tensors and nothing about any single one.

How it works, per step:

1. Every feature party holds an X25519 key pair for the job (``key_shares``).
   Its public key travels, signed with the key of its TLS certificate, over its
   peer stream to the label party, which relays every share to every feature
   party. Each one checks the signatures against its own CA and the identities
   the job names, so the label party cannot substitute a key.
2. Each pair of feature parties derives one shared key (X25519 + HKDF-SHA256
   over the job and both public keys).
3. A feature party encodes its hidden tensor in fixed point modulo 2^64
   (``fixed_point``) and adds, for every other feature party, a mask drawn
   from ChaCha20 keyed by their pair key over (phase, epoch, step, split):
   the lower-named party of a pair adds it, the other subtracts it
   (``masks``). A replayed step draws the same masks.
4. The label party adds the masked tensors modulo 2^64: the masks cancel and
   the sum decodes to the plain sum within the fixed-point resolution.
"""

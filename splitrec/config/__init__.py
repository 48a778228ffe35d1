"""The configs: a party's own (``PartyConfig``) and a job's (``JobConfig``),
read from YAML files or built in Python, validated alike."""

from splitrec.config.features import FeatureConfig
from splitrec.config.job import EarlyStoppingSection, JobConfig, load_job_config
from splitrec.config.model import ModelConfig
from splitrec.config.party import (
    DataConfig,
    JobPartyConfig,
    LabelConfig,
    PartyConfig,
    PeerConfig,
    load_party_config,
)
from splitrec.config.tls import TlsConfig
from splitrec.config.writer import write_party_config

__all__ = [
    "DataConfig",
    "EarlyStoppingSection",
    "FeatureConfig",
    "JobConfig",
    "JobPartyConfig",
    "LabelConfig",
    "ModelConfig",
    "PartyConfig",
    "PeerConfig",
    "TlsConfig",
    "load_job_config",
    "load_party_config",
    "write_party_config",
]

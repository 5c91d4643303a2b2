"""Configuration: ``schema`` (the file's pydantic models) and ``loader`` (YAML + env → config);
``flags`` (feature flags, the ``reload`` section), ``reload`` (versions, the file watcher),
``summary`` (check-config) and ``diff`` (config diff). The swap itself is ``runtime``'s."""

from hybridinference.config.loader import load_config, parse_config
from hybridinference.config.schema import GatewayConfig, ModelConfig, RouteConfig

__all__ = ["GatewayConfig", "ModelConfig", "RouteConfig", "load_config", "parse_config"]

"""Configuration: ``schema`` (the file's pydantic models) and ``loader`` (YAML + env → config)."""

from hybridinference.config.loader import load_config, parse_config
from hybridinference.config.schema import GatewayConfig, ModelConfig, RouteConfig

__all__ = ["GatewayConfig", "ModelConfig", "RouteConfig", "load_config", "parse_config"]

"""The configuration file's shape: pydantic models, frozen, unknown fields rejected.

Providers are a discriminated union on ``kind``; adding a provider kind means adding one
model here and one entry in ``adapters.registry``. Cross-references (a route naming a
provider, duplicate model names) are checked in ``GatewayConfig`` itself.
"""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    field_validator,
    model_validator,
)

from hybridinference.config.flags import FeatureFlags, ModelFlags, ReloadConfig
from hybridinference.config.limits import LimitsConfig
from hybridinference.config.routing import (
    HealthConfig,
    HedgingConfig,
    RouteCapabilities,
    RouteLimits,
    SLOConfig,
    StrategyOptions,
)


class Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Timeouts(Strict):
    """Seconds. ``first_byte`` bounds the wait for response headers (and first SSE event)."""

    connect: float = Field(5.0, gt=0)
    first_byte: float = Field(60.0, gt=0)
    idle: float = Field(60.0, gt=0, description="Longest gap between two stream chunks.")
    total: float = Field(600.0, gt=0, description="Whole request, all attempts included.")


class Pricing(Strict):
    """US dollars per one million tokens."""

    input: float = Field(0.0, ge=0)
    output: float = Field(0.0, ge=0)


OpenAIProfile = Literal[
    "generic",
    "openai",
    "vllm",
    "sglang",
    "ollama",
    "deepseek",
    "zhipu",
    "chutes",
    "featherless",
    "openrouter",
]


class ProviderBase(Strict):
    location: Literal["local", "cloud"] = "cloud"
    optional: bool = Field(
        False,
        description="Disable this provider (instead of failing) when its api_key_env is unset.",
    )
    timeouts: Timeouts | None = None
    metrics_url: str | None = Field(
        None,
        description="A local engine's Prometheus /metrics (vLLM, SGLang), scraped for load; "
        "defaults to the base URL's /metrics for the vllm and sglang profiles.",
    )


class OpenAIProviderConfig(ProviderBase):
    """Any OpenAI-compatible endpoint: vLLM, SGLang, Ollama /v1, OpenAI, DeepSeek, ..."""

    kind: Literal["openai"]
    base_url: str
    api_key_env: str | None = None
    profile: OpenAIProfile = "generic"
    headers: dict[str, str] = Field(default_factory=dict)
    drop_unsupported_params: tuple[str, ...] = Field(
        (), description="Parameters the profile cannot honour that are dropped, not refused."
    )

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url(value)


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// URL")
    return value.rstrip("/")


class NativeProviderBase(ProviderBase):
    """Shared by the providers whose native (non-OpenAI) API the gateway translates to."""

    api_key_env: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    drop_unsupported_params: tuple[str, ...] = Field(
        (),
        description="OpenAI parameters this provider cannot honour that are dropped "
        "instead of refused with a 400.",
    )

    @field_validator("base_url", check_fields=False)
    @classmethod
    def _http_url(cls, value: str) -> str:
        return _http_url(value)


class AnthropicProviderConfig(NativeProviderBase):
    """The Anthropic Messages API (``POST {base_url}/v1/messages``)."""

    kind: Literal["anthropic"]
    base_url: str = "https://api.anthropic.com"
    anthropic_version: str = "2023-06-01"
    default_max_tokens: int = Field(
        4096, ge=1, description="max_tokens sent when the client gave none (Anthropic needs one)."
    )
    max_tokens: dict[str, int] = Field(
        default_factory=dict,
        description="Per upstream model: max_tokens when the client gave none.",
    )


class GeminiProviderConfig(NativeProviderBase):
    """Google Gemini's native API (generateContent, streamGenerateContent, embedContent)."""

    kind: Literal["gemini"]
    base_url: str = "https://generativelanguage.googleapis.com"
    api_version: str = "v1beta"


class OllamaProviderConfig(NativeProviderBase):
    """Ollama's native API (``/api/chat``, ``/api/embed``); ``/v1`` is the openai kind."""

    kind: Literal["ollama"]
    location: Literal["local", "cloud"] = "local"
    base_url: str = "http://127.0.0.1:11434"
    keep_alive: str | None = None
    num_ctx: int | None = Field(
        None, gt=0, description="Context window (Ollama's default is small)."
    )
    options: dict[str, float | int | str | bool] = Field(
        default_factory=dict, description="Default Modelfile options sent with every request."
    )


class DemoProviderConfig(ProviderBase):
    """A built-in deterministic simulated model: no network, no key, no GPU."""

    kind: Literal["demo"]
    location: Literal["local", "cloud"] = "local"
    ttft_ms: float = Field(30.0, ge=0)
    tokens_per_second: float = Field(200.0, gt=0)
    max_tokens: int = Field(64, ge=1)


ProviderConfig = Annotated[
    OpenAIProviderConfig
    | DemoProviderConfig
    | AnthropicProviderConfig
    | GeminiProviderConfig
    | OllamaProviderConfig,
    Field(discriminator="kind"),
]


class RouteConfig(Strict):
    provider: str
    model: str = Field(description="The model name the upstream knows.")
    weight: float = Field(1.0, ge=0)
    pricing: Pricing = Pricing()
    capabilities: RouteCapabilities = RouteCapabilities()
    limits: RouteLimits = RouteLimits()


class ModelConfig(Strict):
    name: str = Field(min_length=1)
    aliases: tuple[str, ...] = ()
    routes: tuple[RouteConfig, ...] = Field(min_length=1)
    strategy: str = "weighted"
    strategy_options: StrategyOptions = StrategyOptions()
    slo: SLOConfig = SLOConfig()
    hedging: HedgingConfig = HedgingConfig()
    context_length: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    owned_by: str = "hybridinference"
    description: str = ""
    flags: ModelFlags | None = Field(None, description="Per-model feature flags.")


class CorsConfig(Strict):
    """Browser cross-origin access; off unless origins are listed."""

    allow_origins: tuple[str, ...] = Field((), description='e.g. ["https://app.example"].')
    allow_methods: tuple[str, ...] = ("GET", "POST")
    allow_headers: tuple[str, ...] = ("authorization", "content-type", "x-api-key")
    allow_credentials: bool = False
    max_age: int = Field(600, ge=0)


class ServerConfig(Strict):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    max_body_bytes: int = Field(10 * 1024 * 1024, gt=0)
    body_timeout: float = Field(
        30.0, gt=0, description="Seconds a request body may take to arrive (then 408)."
    )
    keepalive_timeout: int = Field(
        75,
        gt=0,
        description="Seconds an idle client connection is kept open. Longer than the "
        "reverse proxy's own upstream keep-alive (nginx: 60 s), or the proxy may send a "
        "request on a connection the gateway is closing (a 502).",
    )
    trusted_proxies: tuple[IPvAnyNetwork, ...] = Field(
        (),
        description="CIDRs of reverse proxies whose X-Forwarded-For / X-Real-IP is believed "
        "(e.g. the nginx edge); from any other peer those headers are ignored.",
    )
    cors: CorsConfig = CorsConfig()


class AuthThrottleConfig(Strict):
    """Repeated failed authentications from one client address are refused for a while
    (429 + Retry-After), the delay doubling per failure (gateway/auth_throttle.py)."""

    enabled: bool = True
    free_failures: int = Field(10, ge=1, description="Failures before the first delay.")
    base_delay: float = Field(1.0, gt=0)
    max_delay: float = Field(300.0, gt=0)
    forget_after: float = Field(900.0, gt=0, description="A quiet address starts afresh.")
    max_addresses: int = Field(100_000, ge=1, description="Bounded memory: LRU eviction.")
    exempt: tuple[IPvAnyNetwork, ...] = Field(
        (IPv4Network("127.0.0.0/8"), IPv6Network("::1/128")),
        description="Never throttled: by default loopback (local tools, the dashboard, an "
        "nginx on this host without trusted_proxies would make everyone one address).",
    )


class AuthConfig(Strict):
    required: bool = Field(True, description="When false every request is anonymous.")
    key_secret_env: str = "HYBRIDINFERENCE_KEY_SECRET"
    admin_token_env: str = "HYBRIDINFERENCE_ADMIN_TOKEN"
    refresh_seconds: float = Field(5.0, gt=0, description="How often keys are re-read.")
    throttle: AuthThrottleConfig = AuthThrottleConfig()


class StorageConfig(Strict):
    """See docs/storage.md. ``url``: ``sqlite:///PATH`` or
    ``postgresql://USER@HOST:PORT/DB[?schema=NAME]``."""

    url: str = "sqlite:///hybridinference.db"
    store_content: bool = False
    redact: tuple[Literal["secrets", "emails"], ...] = ("secrets", "emails")
    redact_patterns: tuple[str, ...] = Field((), description="Extra regexes to redact.")
    queue_size: int = Field(100_000, ge=1)
    batch_size: int = Field(500, ge=1)
    flush_interval: float = Field(0.05, gt=0)
    write_timeout: float = Field(0.75, gt=0, description="A slower batch goes to the journal.")
    data_dir: str | None = Field(None, description="Local files; default: beside SQLite.")
    journal_dir: str | None = Field(None, description="Default: <data_dir>/journal.")
    journal_fsync: bool = Field(True, description="fsync every journal append.")
    migrate_on_serve: bool = Field(True, description="Apply migrations at startup.")
    retention_days: float | None = Field(None, gt=0, description="None: keep forever.")
    prune_batch_size: int = Field(5_000, ge=1)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("expected sqlite:///PATH or postgresql://USER@HOST:PORT/DB")
        return value


class RoutingConfig(Strict):
    max_attempts: int = Field(3, ge=1)


class DashboardConfig(Strict):
    """The web dashboard, served by ``serve`` on its own port (one process binds it)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(3001, ge=0, le=65535)
    gateway_url: str | None = Field(
        None,
        description="Where the dashboard calls the gateway API; default: this gateway's "
        "server.host and server.port (0.0.0.0 and :: become loopback).",
    )
    session_hours: float = Field(12.0, gt=0, description="Idle sign-in lifetime.")
    alerts_url: str | None = Field(
        None,
        description="The alert logger (``hybridinference alert-logger``), e.g. "
        "http://127.0.0.1:9095, whose alerts the Alerts page lists; unset: not shown.",
    )
    alerts_token_env: str = Field(
        "HYBRIDINFERENCE_ALERT_TOKEN", description="Env var with the alert logger's token."
    )


class TracingConfig(Strict):
    """OpenTelemetry traces, exported over OTLP/HTTP; off unless enabled."""

    enabled: bool = False
    otlp_endpoint: str = "http://127.0.0.1:4318/v1/traces"
    service_name: str = "hybridinference"
    sample_ratio: float = Field(1.0, ge=0, le=1)


class ObservabilityConfig(Strict):
    metrics: bool = Field(True, description="Serve GET /metrics (Prometheus text format).")
    metrics_token_env: str | None = Field(
        None,
        description="Env var holding a bearer token that GET /metrics then requires "
        "(Prometheus: authorization.credentials); unset: /metrics is open.",
    )
    per_key_labels: bool = Field(
        False, description="Add per-API-key request/token/cost series (one set per key)."
    )
    log_format: Literal["json", "text"] = "json"
    tracing: TracingConfig = TracingConfig()


class GatewayConfig(Strict):
    server: ServerConfig = ServerConfig()
    auth: AuthConfig = AuthConfig()
    storage: StorageConfig = StorageConfig()
    timeouts: Timeouts = Timeouts()
    routing: RoutingConfig = RoutingConfig()
    health: HealthConfig = HealthConfig()
    dashboard: DashboardConfig = DashboardConfig()
    observability: ObservabilityConfig = ObservabilityConfig()
    limits: LimitsConfig = LimitsConfig()
    flags: FeatureFlags = FeatureFlags()
    reload: ReloadConfig = ReloadConfig()
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: tuple[ModelConfig, ...] = ()

    @model_validator(mode="after")
    def _cross_references(self) -> GatewayConfig:
        seen: dict[str, str] = {}
        for index, model in enumerate(self.models):
            for name in (model.name, *model.aliases):
                if name in seen:
                    raise ValueError(
                        f"models[{index}]: name {name!r} is already used by model {seen[name]!r}"
                    )
                seen[name] = model.name
            for r_index, route in enumerate(model.routes):
                if route.provider not in self.providers:
                    known = ", ".join(sorted(self.providers)) or "none defined"
                    raise ValueError(
                        f"models[{index}].routes[{r_index}].provider: unknown provider "
                        f"{route.provider!r} (expected one of: {known})"
                    )
        return self

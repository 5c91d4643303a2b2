"""Which OpenAI request parameters a provider honours.

A translating adapter lists the parameters it maps or forwards; any other parameter in
the request is refused with a 400 naming the parameter and the provider, unless its
value means "the default" or the provider config lists it in ``drop_unsupported_params``.
Never a silent change of meaning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from hybridinference.adapters.base import JSONObject
from hybridinference.errors import UpstreamRejected

#: parameters whose value asks for nothing beyond the default, per parameter
DEFAULT_VALUES: Mapping[str, tuple[object, ...]] = {
    "n": (1,),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "parallel_tool_calls": (True,),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "logit_bias": ({},),
    "modalities": (["text"],),
    "functions": ([],),
}

#: OpenAI fields that concern only OpenAI's own bookkeeping: a translator may ignore them
BOOKKEEPING = frozenset(
    {
        "store",
        "metadata",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "stream_options",
        "service_tier",
    }
)

#: what the native embedding endpoints (Gemini, Ollama) honour
EMBEDDING_PARAMS = ("model", "input", "dimensions", "encoding_format")


def unsupported(provider: str, kind: str, param: str, detail: str = "") -> UpstreamRejected:
    why = f": {detail}" if detail else ""
    return UpstreamRejected(
        f"Parameter '{param}' is not supported by provider '{provider}' ({kind}){why}. "
        f"Remove it, or list it in providers.{provider}.drop_unsupported_params to drop it.",
        param=param,
        code="unsupported_parameter",
        status_code=400,
    )


@dataclass(frozen=True, slots=True)
class ParamPolicy:
    provider: str
    kind: str
    supported: frozenset[str]
    drop: frozenset[str]

    @classmethod
    def of(
        cls, provider: str, kind: str, supported: Iterable[str], drop: Iterable[str]
    ) -> ParamPolicy:
        return cls(provider, kind, frozenset(supported) | BOOKKEEPING, frozenset(drop))

    def screen(self, body: JSONObject) -> JSONObject:
        """``body`` without the parameters to leave out; raises on one it cannot honour."""
        extra = [key for key in body if key not in self.supported]
        if not extra:
            return body
        kept = dict(body)
        for key in extra:
            value = body[key]
            if value is None or value in DEFAULT_VALUES.get(key, ()) or key in self.drop:
                del kept[key]
                continue
            raise unsupported(self.provider, self.kind, key)
        return kept

    def refuse(self, param: str, detail: str) -> UpstreamRejected:
        return unsupported(self.provider, self.kind, param, detail)

    def refuse_content(self, detail: str) -> UpstreamRejected:
        """Something in ``messages`` (not a droppable parameter) the provider cannot take."""
        return UpstreamRejected(
            f"Provider '{self.provider}' ({self.kind}) cannot take this conversation: {detail}.",
            param="messages",
            code="unsupported_content",
            status_code=400,
        )

from __future__ import annotations

import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import rftjudge
from rftjudge import (
    AnthropicClient,
    AzureOpenAIClient,
    BedrockClient,
    Capabilities,
    ChatRequest,
    ChatResponse,
    Client,
    ConfigurationError,
    FunctionClient,
    GeminiClient,
    OllamaClient,
    OpenAIClient,
    ProviderRegistry,
    register_provider,
)
from rftjudge._content import content_text
from rftjudge.clients import default_registry
from rftjudge.clients._registry import BUILTIN_PROVIDERS, split_base_url

BUILTINS = sorted(BUILTIN_PROVIDERS)


@pytest.fixture
def registry() -> ProviderRegistry:
    """No installed entry points: hermetic."""
    return ProviderRegistry(entry_point_group=None)


class EchoClient:
    """A minimal third-party client: satisfies the Client protocol without subclassing anything."""

    provider = "echo"

    def __init__(self, model: str, **options: Any) -> None:
        self.model = model
        self.options = options
        self.capabilities = Capabilities(structured_output=False)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        return ChatResponse(text=content_text(request.messages[-1].content), finish_reason="stop")


# -- built-in providers --------------------------------------------------------------------------


def test_openai(registry: ProviderRegistry) -> None:
    client = registry.create("openai:gpt-4.1-mini", api_key="sk-x")
    assert type(client) is OpenAIClient and client.model == "gpt-4.1-mini"


def test_anthropic(registry: ProviderRegistry) -> None:
    client = registry.create("anthropic:claude-sonnet-4-5", api_key="k", structured_output="tool")
    assert isinstance(client, AnthropicClient)
    assert client.model == "claude-sonnet-4-5" and client.structured_output == "tool"


def test_ollama_model_keeps_its_colon(registry: ProviderRegistry) -> None:
    client = registry.create("ollama:qwen3:8b", think=True)
    assert isinstance(client, OllamaClient) and client.model == "qwen3:8b" and client.think is True


def test_bedrock_model_keeps_its_colon(registry: ProviderRegistry) -> None:
    client = registry.create("bedrock:us.amazon.nova-lite-v1:0", region="us-east-1", api_key="k")
    assert isinstance(client, BedrockClient) and client.model == "us.amazon.nova-lite-v1:0"


def test_gemini_and_azure(registry: ProviderRegistry) -> None:
    gemini = registry.create("gemini:gemini-2.5-flash", api_key="k")
    assert isinstance(gemini, GeminiClient) and gemini.model == "gemini-2.5-flash"
    azure = registry.create(
        "azure:my-deployment", endpoint="https://r.openai.azure.com", api_key="k"
    )
    assert isinstance(azure, AzureOpenAIClient) and azure.model == "my-deployment"


@pytest.mark.parametrize(
    ("spec", "model", "base_url", "mode"),
    [
        (
            "vllm:Qwen/Qwen3-8B@http://host:8000/v1",
            "Qwen/Qwen3-8B",
            "http://host:8000/v1",
            "json_schema",
        ),
        ("vllm:Qwen/Qwen3-8B", "Qwen/Qwen3-8B", "http://localhost:8000/v1", "json_schema"),
        (
            "sglang:meta-llama/Llama-3.1-8B-Instruct",
            "meta-llama/Llama-3.1-8B-Instruct",
            "http://localhost:30000/v1",
            "json_schema",
        ),
        ("llamacpp:judge@https://llama.lan/v1", "judge", "https://llama.lan/v1", "json_schema"),
        ("llama-cpp-python:smollm2", "smollm2", "http://localhost:8000/v1", "json_object_schema"),
    ],
)
def test_openai_compatible_servers(
    registry: ProviderRegistry, spec: str, model: str, base_url: str, mode: str
) -> None:
    client = registry.create(spec)
    assert type(client) is OpenAIClient
    assert client.model == model and client.base_url == base_url
    assert client.structured_output == mode


def test_kwargs_override_server_defaults(registry: ProviderRegistry) -> None:
    client = registry.create(
        "llama-cpp-python:m", structured_output="none", base_url="http://x:1/v1"
    )
    assert isinstance(client, OpenAIClient)
    assert client.structured_output == "none" and client.base_url == "http://x:1/v1"


def test_at_base_url_works_for_other_builtins(registry: ProviderRegistry) -> None:
    client = registry.create("ollama:qwen3:8b@http://gpu-box:11434")
    assert isinstance(client, OllamaClient)
    assert client.model == "qwen3:8b" and client.base_url == "http://gpu-box:11434"


def test_url_after_at_and_base_url_conflict(registry: ProviderRegistry) -> None:
    with pytest.raises(ConfigurationError, match="pass one of them"):
        registry.create("vllm:m@http://a/v1", base_url="http://b/v1")


def test_split_base_url() -> None:
    assert split_base_url("m@http://u:p@host/v1") == ("m", "http://u:p@host/v1")
    assert split_base_url("org/model@v2") == ("org/model@v2", None)  # not a URL: part of the id
    assert split_base_url("@http://x") == ("@http://x", None)


def test_client_errors_surface_from_construction(registry: ProviderRegistry) -> None:
    with pytest.raises(ConfigurationError, match="ANTHROPIC_API_KEY"):
        registry.create("anthropic:claude-sonnet-4-5")


# -- bad specs -------------------------------------------------------------------------------


def test_unknown_provider_lists_known_ones(registry: ProviderRegistry) -> None:
    with pytest.raises(ConfigurationError) as info:
        registry.create("mistral:large")
    message = str(info.value)
    assert "'mistral'" in message
    for name in BUILTINS:
        assert name in message


@pytest.mark.parametrize("spec", ["gpt-4.1-mini", ":gpt", "openai:", 42])
def test_malformed_specs(registry: ProviderRegistry, spec: Any) -> None:
    with pytest.raises(ConfigurationError, match="provider:model"):
        registry.create(spec)


# -- registration ----------------------------------------------------------------------------


def test_register_a_class(registry: ProviderRegistry) -> None:
    registry.register("echo", EchoClient)
    client = registry.create("echo:m:1@http://kept", temperature=3)
    assert isinstance(client, EchoClient) and isinstance(client, Client)
    assert client.model == "m:1@http://kept"  # third parties own their syntax
    assert client.options == {"temperature": 3}
    assert "echo" in registry.names()


def test_register_a_factory(registry: ProviderRegistry) -> None:
    registry.register("fn", lambda model, **kw: FunctionClient(lambda r: model, model=model))
    client = registry.create("fn:constant")
    assert isinstance(client, FunctionClient) and client.model == "constant"


def test_duplicates_need_replace(registry: ProviderRegistry) -> None:
    registry.register("echo", EchoClient)
    with pytest.raises(ConfigurationError, match="replace=True"):
        registry.register("echo", EchoClient)
    with pytest.raises(ConfigurationError, match="replace=True"):
        registry.register("openai", EchoClient)
    registry.register("openai", EchoClient, replace=True)
    assert isinstance(registry.create("openai:gpt@http://x"), EchoClient)
    registry.unregister("openai")
    assert isinstance(registry.create("openai:gpt", api_key="k"), OpenAIClient)


@pytest.mark.parametrize(("name", "factory"), [("", EchoClient), ("a:b", EchoClient), ("x", 3)])
def test_bad_registrations(registry: ProviderRegistry, name: str, factory: Any) -> None:
    with pytest.raises(ConfigurationError):
        registry.register(name, factory)


def test_registries_are_independent() -> None:
    one = ProviderRegistry({"echo": EchoClient}, entry_point_group=None)
    two = ProviderRegistry(entry_point_group=None)
    assert "echo" in one.names() and "echo" not in two.names()
    bare = ProviderRegistry(builtins=False, entry_point_group=None)
    assert bare.names() == []


def test_module_level_client_and_register_provider() -> None:
    register_provider("echo-default", EchoClient)
    try:
        client = rftjudge.client("echo-default:m")
        assert isinstance(client, EchoClient)
        assert "echo-default" in default_registry.names()
    finally:
        default_registry.unregister("echo-default")
    assert "echo-default" not in default_registry.names()
    own = ProviderRegistry({"mine": EchoClient}, entry_point_group=None)
    assert isinstance(rftjudge.client("mine:x", registry=own), EchoClient)
    register_provider("mine2", EchoClient, registry=own)
    assert "mine2" in own.names() and "mine2" not in default_registry.names()


def test_default_client_spec_builds_openai() -> None:
    client = rftjudge.client("openai:gpt-4.1-mini", api_key="sk-x")
    assert isinstance(client, OpenAIClient) and isinstance(client, Client)


# -- entry points ----------------------------------------------------------------------------


@pytest.fixture
def installed_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fake installed distribution declaring providers in the rftjudge.providers group."""
    group = "rftjudge.providers.test"
    (tmp_path / "rftjudge_echo_plugin.py").write_text(
        textwrap.dedent(
            """
            from rftjudge import Capabilities, ChatResponse

            class PluginClient:
                provider = "plugin"
                def __init__(self, model, **kw):
                    self.model, self.kw = model, kw
                    self.capabilities = Capabilities()
                async def complete(self, request):
                    return ChatResponse(text="{}")

            def make(model, **kw):
                return PluginClient("made:" + model, **kw)

            NOT_CALLABLE = 3

            def broken(model, **kw):
                raise AssertionError("never called")
            """
        )
    )
    dist = tmp_path / "rftjudge_echo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rftjudge-echo-plugin\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[{group}]\n"
        "plugin = rftjudge_echo_plugin:PluginClient\n"
        "madeby = rftjudge_echo_plugin:make\n"
        "openai = rftjudge_echo_plugin:PluginClient\n"
        "notcallable = rftjudge_echo_plugin:NOT_CALLABLE\n"
        "missing = rftjudge_echo_plugin:does_not_exist\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield group
    sys.modules.pop("rftjudge_echo_plugin", None)


def test_entry_point_class_and_factory(installed_plugin: str) -> None:
    registry = ProviderRegistry(entry_point_group=installed_plugin)
    assert {"plugin", "madeby"} <= set(registry.names())
    plugin = registry.create("plugin:some:model", timeout=3)
    assert type(plugin).__name__ == "PluginClient"
    assert plugin.model == "some:model" and plugin.kw == {"timeout": 3}  # type: ignore[attr-defined]
    assert registry.create("madeby:x").model == "made:x"


def test_entry_point_cannot_shadow_a_builtin(installed_plugin: str) -> None:
    registry = ProviderRegistry(entry_point_group=installed_plugin)
    assert isinstance(registry.create("openai:gpt", api_key="k"), OpenAIClient)
    assert registry.names().count("openai") == 1


def test_registration_wins_over_entry_point(installed_plugin: str) -> None:
    registry = ProviderRegistry({"plugin": EchoClient}, entry_point_group=installed_plugin)
    assert isinstance(registry.create("plugin:m"), EchoClient)


@pytest.mark.parametrize(
    ("name", "match"), [("notcallable", "not a class or factory"), ("missing", "failed to load")]
)
def test_broken_entry_points_are_configuration_errors(
    installed_plugin: str, name: str, match: str
) -> None:
    registry = ProviderRegistry(entry_point_group=installed_plugin)
    with pytest.raises(ConfigurationError, match=match):
        registry.create(f"{name}:m")


def test_default_group_name() -> None:
    assert rftjudge.clients._registry.ENTRY_POINT_GROUP == "rftjudge.providers"
    assert "ProviderRegistry(providers=" in repr(ProviderRegistry(entry_point_group=None))


# -- docs/providers.md -----------------------------------------------------------------------------


def test_providers_doc_examples_run() -> None:
    """The "write your own client" examples in docs/providers.md run as written."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "providers.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    runnable = [
        b
        for b in blocks
        if "judge.reward(" in b or "register_provider(" in b or "ProviderRegistry(" in b
    ]
    assert len(runnable) == 4
    namespace: dict[str, Any] = {}
    try:
        for block in runnable:
            exec(compile(block, "docs/providers.md", "exec"), namespace)
    finally:
        default_registry.unregister("inhouse")
    assert type(namespace["judge_client"]).__name__ == "InHouseClient"
    assert namespace["judge_client"].model == "judge-v2"

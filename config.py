"""Settings shared by the worker, the starter, the callback server and the embedded stack.

Everything comes from the environment or `.env`, with defaults that run the embedded stack
(simulated carrier, local mail) on loopback with no account anywhere.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import sys
from functools import cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes
from temporalio.envconfig import ClientConfig
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from carrier.accounts import CarrierAccount
from codec.aes import AesGcmCodec, BadKeys, EncryptionKey, parse_keys
from domain.call_queue import CallQueue, calls_queue
from domain.contacts import to_e164
from i18n.languages import SHIPPED

DEFAULT_TEMPORAL_ADDRESS = "localhost:7233"
EXAMPLES = Path(__file__).resolve().parent / "examples"
DEV_ACCOUNT_SID = "AC" + "0" * 32
DEV_AUTH_TOKEN = "rallycall-embedded-dev-token"
DEV_PIN_SECRET = "rallycall-embedded-pin-secret"
DEV_CONSOLE_SECRET = "rallycall-embedded-console-secret"
DEV_ENCRYPTION_KEYS = "dev:cmFsbHljYWxsIGVtYmVkZGVkIGRldiBrZXkgb25seSE="
"""The embedded stack's and the tests' payload key (`rallycall embedded dev key only!`)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="RALLYCALL_", env_file=".env", extra="ignore", hide_input_in_errors=True
    )  # an error must not print the secret it is about

    environment: Literal["production", "development"] = "production"
    """`development` on the embedded stack, `make prod-like` and the tests, where the dev secrets
    are fine; unset means production, where every entry point refuses them."""

    data_dir: Path = Path(".data")
    task_queue: str = "rallycall"
    ui_port: int = 8233

    callback_addr: str = "127.0.0.1:8080"
    """Where the callback server listens."""
    public_url: str = "http://127.0.0.1:8080"
    """Where the carrier reaches the callback server (signatures are checked against it)."""

    twilio_api_url: str | None = None
    """Base URL of a Twilio-compatible API; unset means api.twilio.com."""
    twilio_account_sid: str = Field(DEV_ACCOUNT_SID, validation_alias="TWILIO_ACCOUNT_SID")
    twilio_auth_token: str = Field(DEV_AUTH_TOKEN, validation_alias="TWILIO_AUTH_TOKEN")
    dial_in_number: str = "+41215550100"
    """The conference number: caller ID of outbound calls, and the number people dial in to."""

    carriers: list[CarrierAccount] = []
    """The carriers in order, as JSON (deploy/README.md): calls and SMS go through the first that
    works. Unset: one, `twilio`, from TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN,
    RALLYCALL_TWILIO_API_URL, RALLYCALL_DIAL_IN_NUMBER and the rates below."""

    language: str = "en"
    """The installation's language: of procedures that name none, and for anyone whose own is
    not shipped (en, fr, de, it)."""

    workflow_cache: int = Field(1000, ge=1)
    """Runs and batches a worker keeps in memory between their tasks (Temporal's sticky cache;
    the SDK's default). One evicted is replayed from its history at its next task: fewer bound
    a worker's memory at the cost of replays (bench (d) measures both)."""

    calls_per_second: float = Field(1.0, gt=0)
    """Outbound calls per second the carrier account allows (Twilio's default is 1)."""
    sms_per_second: float = Field(100.0, gt=0)
    """SMS per second the carrier sends for the account: Twilio queues what comes faster. It
    depends on the senders (about 1 a second for a US long code, 100 or more for a short code
    or a Messaging Service with many numbers): set it to the account's. The launch says how
    long a step's SMS take at this rate."""

    deployment: str | None = None
    """The worker deployment its workers belong to (Temporal Worker Versioning); unset: the
    task queue's name."""
    build_id: str = Field(default_factory=lambda: release())
    """This code's version within the deployment: a run stays on the build it started on."""

    pin_digits: int = Field(10, ge=6, le=12)
    """Length of conference PINs: with 10 and the default limits, a guesser's chance into any of
    1,000 running conferences in 4 h is at most 0.012 % (the README's threat model)."""

    dial_in_patience_s: float = Field(4.0, gt=0, le=10)
    """How long a PIN check is retried within one webhook before the caller is asked to hold."""

    pin_failures_per_caller: int = Field(5, ge=1)
    """Wrong PINs one caller number may key in per 10 minutes before being turned away."""
    pin_failures_per_run: int = Field(20, ge=1)
    """Wrong PINs from a run's own numbers per 10 minutes before they are turned away."""
    pin_failures_per_line: int = Field(30, ge=1)
    """Wrong PINs on the whole line per 10 minutes before numbers of no running run are turned away."""

    definitions_dir: Path = EXAMPLES
    """Alert schemes (`schemes.yaml`) and procedures (`procedures/*.yaml`)."""
    red_button: str = "conference-call"
    """The procedure `starter.py conference` runs: a text field for the welcome, a contacts field."""
    contacts_file: Path = EXAMPLES / "contacts.yaml"

    simulator_port: int = 0
    scenario: Path = EXAMPLES / "scenario.yaml"
    """How the simulated carrier answers each number (embedded stack only)."""

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "rallycall <rallycall@localhost>"

    console_addr: str = "127.0.0.1:8000"
    """Where the console listens."""
    console_url: str = "http://127.0.0.1:8000"
    """Where people reach the console: the base of call-me links in SMS."""
    console_secret: str = DEV_CONSOLE_SECRET
    """Signs console sessions, CSRF tokens and call-me links."""
    console_token: SecretStr | None = None
    """A launcher's personal token (`python -m console users token NAME`): with it the CLI
    launches, reads and ends runs through the console at RALLYCALL_CONSOLE_URL, holding no
    other secret and needing no access to Temporal."""
    users_file: Path | None = None
    """Console accounts (argon2 password hashes): `python -m console users add|remove|list`."""
    console_proxies: int = Field(0, ge=0)
    """How many proxies in front of the console append the client's address to X-Forwarded-For;
    0: the header is not trusted and the client's address is the connection's."""
    sign_in_failures_per_account: int = Field(10, ge=1)
    """Failed sign-ins to one account in 15 minutes after which its sign-ins are refused."""
    sign_in_failures_per_address: int = Field(20, ge=1)
    """Failed sign-ins from one client address (an IPv6 /64) in 15 minutes after which its
    sign-ins are refused."""

    metrics_addr: str | None = None
    """Where `python worker.py` serves Prometheus metrics (e.g. 127.0.0.1:9464); unset: none."""

    pin_secret: str = DEV_PIN_SECRET
    """Key of the HMAC that turns a PIN into its lease ID, so no PIN appears in plain text."""

    encryption_keys: SecretStr = SecretStr(DEV_ENCRYPTION_KEYS)
    """`ID:BASE64KEY,...` (32-byte AES keys, `python -m codec new-key ID`): every payload stored in
    Temporal is encrypted with the first, and decrypted with any listed (rotation)."""

    accept_unsealed_payloads: bool = False
    """Read payloads that are not encrypted as they are. Only for histories written before
    encryption was turned on: otherwise anyone who can write to Temporal can forge a signal."""

    @field_validator("language")
    @classmethod
    def _language_is_shipped(cls, value: str) -> str:
        if value not in SHIPPED:
            raise ValueError(
                f"RALLYCALL_LANGUAGE: {value!r} is not one rallycall ships ({', '.join(SHIPPED)})"
            )
        return value

    @field_validator("carriers")
    @classmethod
    def _carriers_are_distinct(cls, value: list[CarrierAccount]) -> list[CarrierAccount]:
        names = [account.name for account in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"RALLYCALL_CARRIERS: {', '.join(twice)} named more than once")
        return value

    def carrier_accounts(self) -> list[CarrierAccount]:
        """RALLYCALL_CARRIERS, else the one Twilio account of the TWILIO_* variables (built
        unchecked: a bad RALLYCALL_DIAL_IN_NUMBER is refused by name when a run is launched)."""
        return self.carriers or [
            CarrierAccount.model_construct(
                name="twilio",
                kind="twilio",
                account_sid=self.twilio_account_sid,
                auth_token=SecretStr(self.twilio_auth_token),
                api_url=self.twilio_api_url,
                number=e164_or_as_is(self.dial_in_number),
                calls_per_second=self.calls_per_second,
                sms_per_second=self.sms_per_second,
                application_id=None,
                public_key=None,
            )
        ]

    @field_validator("encryption_keys")
    @classmethod
    def _keys_are_usable(cls, value: SecretStr) -> SecretStr:
        try:
            parse_keys(value.get_secret_value())
        except BadKeys as exc:
            raise ValueError(f"RALLYCALL_ENCRYPTION_KEYS: {exc}") from None
        return value

    @property
    def encryption_key_ring(self) -> tuple[EncryptionKey, ...]:
        return parse_keys(self.encryption_keys.get_secret_value())

    def call_queue(self) -> CallQueue:
        """Where runs launched now place their calls: each carrier's account is its calls'
        fairness key; the first carrier's is also the queue's before 0.2.0."""
        accounts = self.carrier_accounts()
        return CallQueue(
            task_queue=calls_queue(self.task_queue),
            account=accounts[0].account_sid,
            calls_per_second=accounts[0].calls_per_second,
            carriers=[account.route() for account in accounts],
        )

    @property
    def deployment_name(self) -> str:
        return self.deployment or self.task_queue

    @property
    def callback_host(self) -> str:
        return self.callback_addr.rsplit(":", 1)[0]

    @property
    def callback_port(self) -> int:
        return int(self.callback_addr.rsplit(":", 1)[1])

    @property
    def users_path(self) -> Path:
        """RALLYCALL_USERS_FILE, else `users.json` in the data dir (a stack with a data dir of its
        own has accounts of its own)."""
        return self.users_file or self.data_dir / "users.json"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def carrier_log(self) -> Path:
        return self.data_dir / "carrier.jsonl"


def production_problems(config: Settings) -> list[str]:
    """In production, the embedded stack's dev secrets (published in this repository) would let
    anyone forge callbacks, name PIN leases, sign console sessions or read every payload: each one
    left at its dev value is a problem naming the variable to set. Whatever else is set (a
    Twilio stand-in's URL included): production is declared by RALLYCALL_ENVIRONMENT, not guessed."""
    if config.environment == "development":
        return []
    checks = [
        ("TWILIO_AUTH_TOKEN", config.twilio_auth_token == DEV_AUTH_TOKEN, "your Twilio account's auth token"),
        ("RALLYCALL_PIN_SECRET", config.pin_secret == DEV_PIN_SECRET, "a long random secret"),
        ("RALLYCALL_CONSOLE_SECRET", config.console_secret == DEV_CONSOLE_SECRET, "a long random secret"),
        ("RALLYCALL_ENCRYPTION_KEYS", uses_dev_key(config), "your own keys (`python -m codec new-key ID`)"),
    ]
    checks += [
        (f"RALLYCALL_CARRIERS ({account.name})", dev_token(account), "that account's auth token")
        for account in config.carriers
    ]
    return [f"{name} is the embedded dev value: set it to {what}" for name, dev, what in checks if dev]


def e164_or_as_is(number: str) -> str:
    try:
        return to_e164(number)
    except ValueError:
        return number


def dev_token(account: CarrierAccount) -> bool:
    return account.auth_token.get_secret_value() == DEV_AUTH_TOKEN


def refuse_dev_secrets(config: Settings, what: str) -> None:
    """Entry points call this before connecting to anything: a clear refusal, exit code 2."""
    problems = production_problems(config)
    if problems:
        print(f"{what}: refusing to start in production (RALLYCALL_ENVIRONMENT={config.environment}):",
              file=sys.stderr)  # fmt: skip
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        print("  (on the embedded stack, `make prod-like` and in tests: RALLYCALL_ENVIRONMENT=development)",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2)


def checked_settings(what: str) -> Settings:
    """The settings of an entry point, checked before it connects to anything: a setting that
    does not parse, or a dev secret in production, ends it with exit code 2 and what to fix."""
    try:
        config = settings()
    except ValidationError as exc:
        print(f"{what}: invalid settings:", file=sys.stderr)
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "?"
            name = field if field.isupper() else f"RALLYCALL_{field.upper()}"
            message = error["msg"].removeprefix("Value error, ").removeprefix(f"{name}: ")
            within = "".join(
                f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"][1:]
            )
            print(f"  - {name}{within}: {message}", file=sys.stderr)
        raise SystemExit(2) from None
    refuse_dev_secrets(config, what)
    return config


def uses_dev_key(config: Settings) -> bool:
    """The dev key anywhere in the ring (under any ID): payloads it sealed are as good as clear."""
    dev = {key.secret for key in parse_keys(DEV_ENCRYPTION_KEYS)}
    return any(key.secret in dev for key in config.encryption_key_ring)


def data_converter(config: Settings) -> DataConverter:
    """The one data converter of every client, worker, replayer and test environment: pydantic
    models, every payload encrypted, and failures' messages and stack traces moved into their
    encrypted attributes (they would otherwise stay in clear)."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=AesGcmCodec(config.encryption_key_ring, config.accept_unsealed_payloads),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


def release() -> str:
    """The installed rallycall's version (pyproject.toml): the default build ID."""
    try:
        return importlib.metadata.version("rallycall")
    except importlib.metadata.PackageNotFoundError:
        return "unreleased"


@cache
def settings() -> Settings:
    return Settings()


def temporal_target() -> str:
    """The Temporal frontend address, as `temporalio.envconfig` resolves it."""
    return str(ClientConfig.load_client_connect_config().get("target_host", DEFAULT_TEMPORAL_ADDRESS))


def ui_url(workflow_id: str | None = None) -> str:
    config = ClientConfig.load_client_connect_config()
    namespace = config.get("namespace", "default")
    base = f"http://localhost:{settings().ui_port}/namespaces/{namespace}/workflows"
    return f"{base}/{workflow_id}" if workflow_id else base


async def connect_temporal(metrics_addr: str | None = None) -> Client:
    """Connect through envconfig, so the same code reaches a dev server, a cluster or Cloud;
    with `metrics_addr`, the SDK's metrics (and ours) are served there for Prometheus."""
    config = ClientConfig.load_client_connect_config()
    config.setdefault("target_host", DEFAULT_TEMPORAL_ADDRESS)
    runtime = None
    if metrics_addr:
        runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=metrics_addr)))
    return await Client.connect(**config, data_converter=data_converter(settings()), runtime=runtime)

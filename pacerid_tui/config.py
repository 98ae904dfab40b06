"""The run configuration: pydantic models of configs/*.yaml.

One file drives both sides. The controller validates all of it here (unknown keys are errors, so
a typo never silently falls back to a default); the trainer on the host reads the `data`,
`model`, `training` and `output` sections itself, since it never imports this package.
Every validation error names the file, the key and the bad value.
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Sequence, Set
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pacerid_tui.core.kernel.errors import ConfigError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InstanceConfig(Section):
    """Where training runs and what it may cost."""

    provider: Literal["aws", "local"] = "local"
    """`local` runs an SSH server on 127.0.0.1 (no account, $0); `aws` rents an EC2 instance."""
    region: str = "us-east-1"
    """AWS region (ignored by the local provider); with `regions`, where doctor and `status`
    look first."""
    regions: list[str] | Literal["auto"] | None = None
    """Regions a spot run may go to, chosen by the ranking in README's "Choosing where" (price,
    placement score, interruptions); `auto`: every region the account has enabled that offers
    instance_type. Unset: `region` alone, its cheapest zone first, as without a choice."""
    advisor_url: str = Field(
        default="https://spot-bid-advisor.s3.amazonaws.com/spot-advisor-data.json",
        pattern=r"^https?://\S+$",
    )
    """The Spot Instance Advisor's public data (interruptions by region and type), read for the
    ranking and cached under the state folder for a day."""
    recovery_minutes: float = Field(default=20, ge=0)
    """What one interruption costs the run in time (a new host, setup, the data, the work since
    the last checkpoint): the ranking's price of an interruption."""
    profile: str | None = None
    """AWS profile name; default: boto3's standard credential chain."""
    instance_type: str = "g4dn.xlarge"
    """EC2 instance type to try first."""
    fallback_instance_types: list[str] = Field(default_factory=list)
    """Types to try, in order, when the first has no capacity in any zone."""
    zones: list[str] = Field(default_factory=list)
    """Availability zones to consider; default: every zone of the region, cheapest first."""
    market: Literal["spot", "on-demand"] = "spot"
    """Spot is billed at the price in force, never above max_price."""
    max_price: float | None = Field(default=0.30, gt=0.001)
    """Highest spot price to pay, USD per hour."""
    on_demand_fallback: bool = False
    """Fall back to on-demand when no spot capacity is found anywhere."""
    ami_id: str | None = None
    """Pin an AMI (an x86_64 one with PyTorch: setup reuses it); default: the newest PyTorch
    Deep Learning AMI on the newest Ubuntu."""
    ssh_user: str | None = None
    """Login user on the instance; default: the image's own (`ubuntu` on Ubuntu, `ec2-user` on
    Amazon Linux)."""
    ssh_proxy_command: str | None = Field(default=None, min_length=1)
    """Reach the instance through this command, as OpenSSH's ProxyCommand (a bastion host:
    `ssh -W %h:%p bastion`); %h, %p and %r are its address (the private one when it has no
    public one), port and user, %% a literal %."""
    key_name: str = "pacerid-ml-key"
    """EC2 key pair name; created when missing."""
    key_path: str = "~/.ssh/pacerid-ml-key.pem"
    """Where the private key lives locally (written 0400, never overwritten)."""
    subnet_id: str | None = Field(default=None, pattern=r"^subnet-[0-9a-f]+$")
    """Launch into this subnet (and its VPC); default: the default VPC's subnet in each zone.
    Needed where the account has no default VPC; give it public IPs or a ssh_proxy_command."""
    security_group: str = "pacerid-ml-sg"
    """Security group allowing SSH from ssh_cidr."""
    ssh_cidr: str | None = None
    """CIDR allowed to SSH; default: this machine's public IP as /32."""
    caller_ip_url: str = "https://checkip.amazonaws.com"
    """Where to look up this machine's public IP."""
    root_volume_gb: int | None = Field(default=None, ge=8)
    """Root EBS volume size in GB; default: the image's snapshot plus room for data and
    checkpoints. Never below the snapshot (a launch with less is refused)."""
    host_key_wait_s: float = Field(default=240, ge=0)
    """How long to wait for the boot console to print the SSH host key fingerprints before the
    first connect; past it the key is trusted on first use, and that is said."""
    budget_usd: float | None = Field(default=None, gt=0)
    """Stop the run when its cost reaches this many dollars."""
    budget_includes_egress: bool = False
    """Count data transfer out in the budget too (an upper bound: the first 100 GB a month are
    free account-wide)."""
    max_runtime_minutes: float | None = Field(default=None, gt=0)
    """Power the host off after this long, whatever happens (dead-man switch)."""
    boot_grace_minutes: float = Field(default=30, gt=0)
    """Power the host off this long after boot unless the host watchdog (started by setup) or a
    controller heartbeat takes over: an instance whose setup failed never outlives it."""
    idle_terminate_minutes: float = Field(default=30, gt=0)
    """Power off this long after training ended with no controller heartbeat."""
    max_recoveries: int = Field(default=3, ge=0)
    """Replacement instances launched per run after spot interruptions (0: never recover)."""
    interruption: Literal["stop", "relaunch"] = "stop"
    """What a spot interruption does. `stop` (default): a persistent spot request stops the
    instance, keeping its disk, and EC2 starts it again when capacity returns; the host resumes
    training by itself (needs an instance role, created for you; falls back to `relaunch`, with
    a warning, where the account may not create or pass it: see `doctor`'s role check).
    `relaunch`: the instance ends and a running controller (`all`, the dashboard) launches a
    replacement. On-demand instances are never interrupted, so neither applies to them."""
    on_stall: Literal["notify", "stop"] = "notify"
    """What a stalled run (`training.stall_minutes`) does: `notify` tells you (toast, line,
    webhook) and lets it run; `stop` asks the trainer to save a checkpoint, then the run ends as
    a budget stop does (results downloaded, instance terminated; the host ends itself when no
    controller is there)."""

    @field_validator("regions", mode="before")
    @classmethod
    def _some_regions(cls, regions: object) -> object:
        if regions is None or regions == "auto":
            return regions
        if not isinstance(regions, list) or not regions:
            raise ValueError("expected a list of regions such as [us-east-1, us-east-2], or auto")
        bad = [name for name in regions if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", str(name))]
        if bad:
            raise ValueError(f"{bad[0]!r} is not a region name such as us-east-2")
        return list(dict.fromkeys(regions))

    def in_region(self, region: str) -> InstanceConfig:
        """This config placed in one region (a run's recorded choice): `regions` no longer
        applies, and `zones` keeps that region's own (every zone there when it lists none)."""
        zones = [zone for zone in self.zones if zone.startswith(region)]
        return self.model_copy(update={"region": region, "regions": None, "zones": zones})

    @field_validator("ssh_cidr")
    @classmethod
    def _a_cidr(cls, cidr: str | None) -> str | None:
        if cidr is None:
            return None
        try:
            ipaddress.ip_network(cidr, strict=False)
        except ValueError:
            raise ValueError("expected a CIDR block such as 203.0.113.7/32") from None
        if "/" not in cidr:
            raise ValueError(f"expected a CIDR block such as {cidr}/32 (the prefix is missing)")
        return cidr

    @field_validator("ssh_proxy_command")
    @classmethod
    def _known_tokens(cls, command: str | None) -> str | None:
        unknown = sorted(set(re.findall(r"%(.?)", command or "")) - {"h", "p", "r", "%"})
        if unknown:
            token = f"%{unknown[0]}" if unknown[0] else "a trailing %"
            raise ValueError(f"{token} is not a token; use %h, %p, %r, or %% for a literal %")
        return command


class SyntheticConfig(Section):
    """The synthetic X-ray-like dataset the local provider trains on."""

    classes: int = Field(default=4, ge=2)
    train_per_class: int = Field(default=60, ge=1)
    test_per_class: int = Field(default=15, ge=1)
    seed: int = 0


class DataConfig(Section):
    source: Literal["kaggle", "synthetic", "local"] = "kaggle"
    """Where the images come from."""
    dataset: str = "jamesphoward/pacemakers"
    """Kaggle dataset slug."""
    local_dir: str | None = None
    """With source `local`: a folder with Train/ and Test/ to upload."""
    image_size: int = Field(default=224, ge=16)
    batch_size: int = Field(default=32, ge=1)
    num_workers: int = Field(default=4, ge=0)
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    excludes: list[str] = Field(default_factory=list)
    """Extra gitignore-style patterns never uploaded."""
    val_fraction: float = Field(default=0.15, gt=0, le=0.5)
    """Share of each class of Train/ held out (at least one image a class) to choose the best
    epoch; Test/ is evaluated once, at the end, on that epoch's model."""


class ModelConfig(Section):
    name: Literal[
        "densenet121", "resnet50", "resnet18", "mobilenet_v3_large", "efficientnet_b0"
    ] = "densenet121"
    pretrained: bool = True


class TrainingConfig(Section):
    epochs: int = Field(default=20, ge=1)
    learning_rate: float = Field(default=3e-4, gt=0)
    weight_decay: float = Field(default=1e-4, ge=0)
    label_smoothing: float = Field(default=0.1, ge=0, lt=1)
    warmup_epochs: int = Field(default=1, ge=0)
    grad_clip: float | None = Field(default=1.0, gt=0)
    amp_dtype: Literal["auto", "fp16", "bf16", "off"] = "auto"
    """Mixed precision on a GPU: `auto` is bf16 where the GPU computes it natively (compute
    capability 8.0 and up), else fp16 with a loss scaler (a T4); `off` trains in float32."""
    compile: bool = False
    channels_last: bool = True
    save_every_epoch_checkpoints: bool = False
    """Also keep checkpoint_epoch_NNN.pt for every epoch on the host (a full checkpoint each:
    84 MB for densenet121); the host always keeps checkpoint_latest.pt and checkpoint_best.pt."""
    seed: int = 42
    device: Literal["auto", "cuda", "cpu"] = "auto"
    stall_minutes: float | None = Field(default=None, gt=0)
    """The host's watchdog calls training stalled after this long with no step (or with the
    GPU below 5 % busy while the trainer lives); default: the larger of 10 minutes and 20 step
    intervals (the median so far). A non-finite loss is a stall at once. `instance.on_stall`
    says what follows."""

    @field_validator("amp_dtype", mode="before")
    @classmethod
    def _bare_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML 1.1 reads a bare `off` as false


class OutputConfig(Section):
    dir: str = "output"
    """Results land in <dir>/<run-id>/ on this machine."""
    model_name: str = "PacerIDClassifier"
    """Name of the exported Core ML model."""
    download_during_training: bool = True
    """Fetch the metrics, logs, report and best weights in the background as epochs finish."""
    checkpoints: Literal["notice", "every_epoch"] = "notice"
    """When the full resumable checkpoints (latest, best) come: `notice` on a spot notice, a
    budget or user stop and at the end, with only the half-precision best weights
    (model_best_fp16.pt) during training, and model_final.pt (latest's twin) left on the host;
    `every_epoch` also after each epoch, and model_final.pt at the end."""
    download_epoch_checkpoints: bool = False
    """Also download every checkpoint_epoch_NNN.pt whenever the full checkpoints come (the host
    writes them only with training.save_every_epoch_checkpoints)."""
    ios_models_dir: str = "ios/PacerID/Models"
    """Where sync-model puts the .mlpackage in the iOS project."""
    system_sample_s: float = Field(default=5.0, gt=0)
    """How often the host samples CPU, RAM, disk and GPUs into output/system.jsonl."""


class NotifyConfig(Section):
    """Who hears when a run ends, besides the dashboard's toast, bell and desktop notice."""

    webhook_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    """A JSON POST (run id, state, best accuracy, cost) here when a run ends; e.g. ntfy."""


class Config(Section):
    name: str = "pacerid-ml"
    instance: InstanceConfig = Field(default_factory=InstanceConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    output: OutputConfig = Field(default_factory=OutputConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)


def load_config(path: str | Path, overrides: Sequence[str] = ()) -> Config:
    """Read and validate a config file; any problem becomes one ConfigError sentence.

    `overrides` are `--set key=value` items (YAML values) laid over the file before validation,
    so they pass the same schema; an error in one names it as `--set key`.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file; pass one with --config FILE.") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it ({err.strerror}).") from None
    return _parsed(path, text, tuple(overrides))


@functools.lru_cache(maxsize=32)
def _parsed(path: Path, text: str, overrides: tuple[str, ...] = ()) -> Config:
    """The same text validates to the same (frozen) Config: the dashboard asks on every refresh."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        line = f" line {where.line + 1}" if where is not None else ""
        raise ConfigError(f"{path}:{line} is not valid YAML; fix the syntax there.") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of sections at the top level.")
    keys = {_override(raw, item) for item in overrides}
    try:
        return Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(path, err, keys)) from None


def _override(raw: dict[str, object], item: str) -> str:
    """Lay one `key=value` over the raw mapping; the dotted key it set."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"--set {item!r}: expected KEY=VALUE, e.g. --set instance.budget_usd=2.")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"--set {key}: {text!r} is not a valid YAML value.") from None
    *sections, leaf = key.split(".")
    where: dict[str, object] = raw
    for depth, name in enumerate(sections):
        inner = where.setdefault(name, {})
        if not isinstance(inner, dict):
            section = ".".join(sections[: depth + 1])
            raise ConfigError(f"--set {key}: {section} is a value, not a section; check the key.")
        where = inner
    where[leaf] = value
    return key


def describe_validation_error(
    path: Path, err: ValidationError, overridden: Set[str] = frozenset()
) -> str:
    """The first problem, as `file: key: value is wrong — what is expected.` (`--set key` when
    the key came from the command line)."""
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    from_set = any(f"{key}.".startswith(f"{o}.") or o.startswith(f"{key}.") for o in overridden)
    if first["type"] == "extra_forbidden":
        where = f"--set {key}: unknown key" if from_set else f"{path}: unknown key '{key}'"
        return f"{where}; check its spelling (see configs/base.yaml)."
    value = first.get("input")
    more = f" (and {len(err.errors()) - 1} more problem(s))" if len(err.errors()) > 1 else ""
    source = "--set" if from_set else f"{path}:"
    why = first["msg"].removeprefix("Value error, ").lower()
    return f"{source} {key} = {value!r} is invalid: {why}{more}."

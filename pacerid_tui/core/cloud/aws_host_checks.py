"""The doctor's checks of where a host would run and how it is reached: the network, the image,
the key pair and the firewall, as the launch would find them, without changing anything.

Apart from the account's checks (`aws_doctor.py`) because they ask different questions of
different look-ups: each one here calls the same look-up the launch uses (aws_network,
aws_ami.find_image, aws_keypair.candidates, aws_firewall), so what the doctor says is what the
launch will do. The network found is kept (`network_found`): the firewall and the spot price
check both need it, and one describe serves them.
"""

from __future__ import annotations

import re
from pathlib import Path

from pacerid_tui.config import InstanceConfig
from pacerid_tui.core.cloud.aws import AwsProvider
from pacerid_tui.core.cloud.aws_ami import find_image
from pacerid_tui.core.cloud.aws_firewall import (
    allowed_cidr,
    find_group,
    group_in_use,
    rule_description,
    ssh_rules,
    ssh_warning,
    stale_rules,
)
from pacerid_tui.core.cloud.aws_keypair import candidates, readable_public_key
from pacerid_tui.core.cloud.aws_keyprint import fingerprints
from pacerid_tui.core.cloud.aws_network import Network, find_network
from pacerid_tui.core.cloud.aws_session import aws_errors
from pacerid_tui.core.kernel.checks import FAIL, OK, WARN, Check


class HostChecks:
    """The network, image, key pair and firewall checks of one instance config."""

    def __init__(self, instance: InstanceConfig, provider: AwsProvider) -> None:
        self.instance = instance
        self.provider = provider
        self.ec2 = provider.clients.ec2
        self._network: Network | None = None

    def network_found(self) -> Network:
        if self._network is None:
            self._network = find_network(self.ec2, self.instance)
        return self._network

    def network(self) -> Check:
        network = self.network_found()
        where = (
            f"Subnet {next(iter(network.subnets.values()))} of {network.vpc_id}"
            if network.configured
            else f"Default VPC {network.vpc_id}"
        )
        zones = list(network.subnets)
        wanted = self.instance.zones
        missing = [zone for zone in wanted if zone not in network.subnets]
        detail = f"{where}; zones with a subnet: {', '.join(zones)}; the security group goes there"
        if wanted and len(missing) == len(wanted):
            return Check(
                "network",
                FAIL,
                f"{detail}, but none of instance.zones ({', '.join(wanted)}).",
                "Set instance.zones to zones listed here, or instance.subnet_id.",
                usage=True,
            )
        if missing:
            return Check(
                "network",
                WARN,
                f"{detail}; {', '.join(missing)} have none and are skipped.",
                "Drop them from instance.zones, or set instance.subnet_id.",
            )
        private = [s for s, public in network.public.items() if not public]
        if private and len(private) == len(network.public) and not self.instance.ssh_proxy_command:
            return Check(
                "network",
                WARN,
                f"{detail}; {private[0]} gives instances no public IP.",
                f"Run `aws ec2 modify-subnet-attribute --subnet-id {private[0]} "
                "--map-public-ip-on-launch`, or reach the host with instance.ssh_proxy_command.",
            )
        return Check("network", OK, detail + ".", "")

    def image(self) -> Check:
        image = find_image(
            self.ec2, self.provider.clients.ssm, self.instance.region, self.instance.ami_id
        )
        torch = re.search(r"PyTorch (\d+(?:\.\d+)*)", image.name)
        system = re.search(r"(Ubuntu \d+\.\d+|Amazon Linux \d+)", image.name)
        return Check(
            "image",
            OK,
            f"{image.image_id}: {image.name} (PyTorch {torch.group(1) if torch else 'unknown'}, "
            f"{system.group(1) if system else 'OS unknown'}, "
            f"SSH user {self.instance.ssh_user or image.user}).",
            "",
        )

    def key_pair(self) -> Check:
        pairs = candidates(self.instance)
        with aws_errors("look up key pairs"):
            found = self.ec2.describe_key_pairs(
                Filters=[{"Name": "key-name", "Values": [pair.name for pair in pairs]}]
            ).get("KeyPairs", [])
        in_aws = {entry.get("KeyName"): entry.get("KeyFingerprint", "") for entry in found}
        for pair in pairs:
            if pair.name in in_aws and pair.path.exists():
                return self._compare(pair.name, pair.path, in_aws[pair.name])
        for pair in pairs:
            if pair.name not in in_aws and readable_public_key(pair.path) is not None:
                detail = f"Key pair {pair.name} will be imported at launch from {pair.path}."
                return Check("key_pair", OK, detail, "")
        configured = pairs[0]
        return Check(
            "key_pair",
            OK,
            f"Key pair {configured.name} will be created at launch, its private key saved to "
            f"{configured.path} (0400).",
            "",
        )

    def _compare(self, name: str, path: Path, remote: str) -> Check:
        try:
            local = fingerprints(path.read_bytes())
        except (OSError, ValueError) as err:
            return Check(
                "key_pair",
                FAIL,
                f"{path} cannot be read as a private key ({err}).",
                "Fix instance.key_path, or move the file away so a new pair is created.",
                usage=True,
            )
        if normal(remote) in {normal(print_) for print_ in local}:
            return Check("key_pair", OK, f"Key pair {name} matches {path}.", "")
        return Check(
            "key_pair",
            FAIL,
            f"Key pair {name} in AWS does not match {path} (the fingerprints differ).",
            f"Point instance.key_path at its key, or delete the pair (`aws ec2 delete-key-pair "
            f"--key-name {name}`) to get a new one.",
            usage=True,
        )

    def firewall(self) -> Check:
        cidr = allowed_cidr(self.instance)
        name = self.instance.security_group
        group = find_group(self.ec2, name, self.network_found().vpc_id)
        opened = f"SSH from {cidr}" + ("" if self.instance.ssh_cidr else " (this machine's IP)")
        warning = ssh_warning(self.instance)
        if group is None:
            detail = f"{opened}; group {name} will be created at launch."
            return Check("firewall", WARN if warning else OK, detail, warning or "")
        rules = ssh_rules(group.get("IpPermissions", []))
        group_id = group["GroupId"]
        stale = stale_rules(
            rules, cidr, rule_description(), lambda: group_in_use(self.ec2, group_id)
        )
        detail = f"{opened} in {name} ({group['GroupId']})"
        if stale:
            return Check(
                "firewall",
                WARN,
                f"{detail}; stale rules: {', '.join(rule.cidr for rule in stale)}.",
                "Nothing to do: the next launch or connection revokes them.",
            )
        return Check("firewall", WARN if warning else OK, detail + ".", warning or "")


def normal(fingerprint: str) -> str:
    return fingerprint.removeprefix("SHA256:").rstrip("=").lower()

"""A loopback stand-in for persistent spot requests, in front of moto (via aws_standin.py).

moto ignores `InstanceMarketOptions.SpotOptions` on RunInstances: it creates no spot request,
never says `spotInstanceRequestId`, and never reopens a request. This serves that part of EC2
as AWS documents it, and forwards everything else to moto:

- RunInstances with `SpotInstanceType=persistent` (EC2 API reference, SpotMarketOptions: only
  with InstanceInterruptionBehavior `stop` or `hibernate`, else InvalidParameterCombination;
  ValidUntil only for persistent requests) records a request `sir-…` with the call's
  `spot-instances-request` tags, and the instances in the answer (and in every later
  DescribeInstances answer) carry `spotInstanceRequestId`;
- DescribeSpotInstanceRequests and CancelSpotInstanceRequests (EC2 API reference: the
  `spotInstanceRequestSet` items with `spotInstanceRequestId`, `type`, `state`, `instanceId`,
  `instanceInterruptionBehavior`, `validUntil`, `tagSet`; an unknown id is HTTP 400
  `InvalidSpotInstanceRequestID.NotFound`); cancelling sets `state` to `cancelled` and leaves
  the instance running; a request a test marks `expired` reads as EC2 says one past its
  ValidUntil (user guide, "State changes for a Spot request": `cancelled`, status
  `schedule-expired`);
- CreateTags naming a request (EC2 API reference, CreateTags: `ResourceId.N`, `Tag.N.Key`,
  `Tag.N.Value`; the answer `CreateTagsResponse` with `return` true) adds the tags to it; the
  other resources named go to moto; `refuse_tags` answers it UnauthorizedOperation (HTTP 403,
  EC2 API reference, Error codes), as for a user without `ec2:CreateTags` on requests, and
  `tags_unseen` that many InvalidInstanceID.NotFound first, as EC2 answers for an id it has
  just returned and does not see yet (EC2 API reference, "Eventual consistency");
- `refuse_iam` answers every IAM call AccessDenied (IAM API reference, Common Errors), and
  `refused_iam` only the IAM actions it names;
- `refuse_pass_role` refuses RunInstances naming an instance profile as EC2 does when the
  caller may not pass its role (EC2 API reference, Error codes: UnauthorizedOperation, HTTP
  403, "You are not authorized to perform this operation", with IAM's sentence naming
  `iam:PassRole` and the encoded authorization message that STS DecodeAuthorizationMessage
  reads);
- `profile_lag` refuses that many launches naming an instance profile with the
  InvalidParameterValue EC2 gives while a new profile has not reached it yet (IAM is eventually
  consistent: IAM user guide, "Changes that I make are not always immediately visible");
- the rule behind `instance.interruption: stop` (EC2 user guide, "Spot Instance requests": a
  persistent request reopens when its instance is terminated, unless it was cancelled first):
  when TerminateInstances ends the instance of an uncancelled persistent request, the request
  launches a fresh instance from the same RunInstances call, and `relaunched` records it;
- an instance that dies while pending (`dies_pending`: the next persistent launch's instance
  reads `pending` at its first DescribeInstances, then `terminated` with that StateReason, EC2
  user guide, "Instance state change reason codes": Server.InternalError "An internal error
  caused the instance to terminate during launch", Client.VolumeLimitExceeded…): moto runs
  every instance at once, so its state is rewritten; its death is a termination, after which
  the persistent request, not cancelled, reopens and launches another (user guide, "Spot
  Instance request states": a persistent request whose instance is terminated goes back to
  `open`, then is fulfilled again).

`calls` is every EC2 action in order, with the ids it named, so a test can assert the order.
"""

from __future__ import annotations

import re
import secrets
import urllib.parse
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from aws_seed import ERROR_XML
from aws_standin import Answer, AwsStandIn, Moto

XMLNS = "http://ec2.amazonaws.com/doc/2016-11-15/"
ET.register_namespace("", XMLNS)
XML = {"Content-Type": "text/xml;charset=UTF-8"}
IAM_VERSION = "2010-05-08"


@dataclass
class SpotRequest:
    request_id: str
    instance_id: str
    run_body: bytes
    """The RunInstances call that made it, replayed when the request launches again."""
    interruption: str
    valid_until: str | None
    tags: dict[str, str] = field(default_factory=dict)
    state: str = "active"
    earlier: list[str] = field(default_factory=list)
    """Instances it held before: EC2 keeps their `spotInstanceRequestId` once they ended."""
    dies: tuple[str, str] | None = None
    """(StateReason code, message) its instance dies with after one `pending` answer."""
    polled: bool = False


def error(code: str, message: str) -> Answer:
    """EC2's Query API error (EC2 API reference, Error codes): HTTP 400, Response/Errors."""
    return 400, XML, ERROR_XML.format(code=code, message=message).encode()


class SpotStandIn(AwsStandIn):
    def __init__(self, moto_url: str) -> None:
        super().__init__(moto_url)
        self.requests: dict[str, SpotRequest] = {}
        self.calls: list[tuple[str, list[str]]] = []
        self.relaunched: list[tuple[str, str]] = []
        """(terminated instance, fresh instance) per relaunch of a persistent request."""
        self.refuse_iam = False
        """Answer every IAM call AccessDenied, as for a user without IAM permissions."""
        self.refused_iam: set[str] = set()
        """IAM actions (e.g. PutRolePolicy) answered AccessDenied."""
        self.refuse_pass_role = False
        """Refuse launches naming an instance profile: the caller may not pass its role."""
        self.profile_lag = 0
        """How many RunInstances naming an instance profile EC2 refuses before it sees it."""
        self.refuse_tags = False
        """Refuse CreateTags naming a spot request, as for a user who may not tag it."""
        self.tags_unseen = 0
        """How many CreateTags naming a request get InvalidInstanceID.NotFound first."""
        self.dies_pending: tuple[str, str] | None = None
        """(StateReason code, message): the next persistent launch's instance dies pending."""

    def ec2(self, form: dict[str, list[str]], body: bytes, moto: Moto) -> Answer | None:
        action = (form.get("Action") or [""])[0]
        if form.get("Version") == [IAM_VERSION] and (self.refuse_iam or action in self.refused_iam):
            return iam_denied(action)
        ids = [v[0] for k, v in sorted(form.items()) if re.fullmatch(r"\w*Id\.\d+", k)]
        self.calls.append((action, ids))
        if action == "RunInstances":
            return self.run(form, body, moto)
        if action == "DescribeInstances":
            return self.with_request_ids(self.pending_deaths(body, moto))
        if action == "DescribeSpotInstanceRequests":
            return self.describe(ids)
        if action == "CancelSpotInstanceRequests":
            return self.cancel(ids)
        if action == "TerminateInstances":
            return self.terminate(ids, moto(body), moto)
        if action == "CreateTags" and any(i.startswith("sir-") for i in ids):
            return self.create_tags(form, ids, moto)
        return None

    def create_tags(self, form: dict[str, list[str]], ids: list[str], moto: Moto) -> Answer:
        ours = [i for i in ids if i.startswith("sir-")]
        if self.refuse_tags:
            message = "You are not authorized to perform this operation."
            body = ERROR_XML.format(code="UnauthorizedOperation", message=message)
            return 403, XML, body.encode()
        if self.tags_unseen > 0:
            self.tags_unseen -= 1
            instance = next(i for i in ids if i.startswith("i-"))
            return error(
                "InvalidInstanceID.NotFound", f"The instance ID '{instance}' does not exist"
            )
        unknown = [i for i in ours if i not in self.requests]
        if unknown:
            return not_found(unknown[0])
        tags = {
            form[key][0]: form.get(key.replace(".Key", ".Value"), [""])[0]
            for key in form
            if re.fullmatch(r"Tag\.\d+\.Key", key)
        }
        for request_id in ours:
            self.requests[request_id].tags.update(tags)
        rest = [i for i in ids if i not in ours]
        if rest:
            query = {k: v for k, v in form.items() if not k.startswith("ResourceId.")}
            query.update({f"ResourceId.{n}": [i] for n, i in enumerate(rest, 1)})
            answer = moto(urllib.parse.urlencode(query, doseq=True).encode())
            if answer[0] != 200:
                return answer
        body = (
            f'<?xml version="1.0" encoding="UTF-8"?><CreateTagsResponse xmlns="{XMLNS}">'
            "<requestId>7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</requestId><return>true</return>"
            "</CreateTagsResponse>"
        )
        return 200, XML, body.encode()

    def run(self, form: dict[str, list[str]], body: bytes, moto: Moto) -> Answer:
        profile = form.get("IamInstanceProfile.Arn", [None])[0]
        if profile and self.refuse_pass_role:
            return pass_role_denied(profile)
        if profile and self.profile_lag > 0:
            self.profile_lag -= 1
            return error(
                "InvalidParameterValue",
                f"Value ({profile}) for parameter iamInstanceProfile.arn is invalid. "
                "Invalid IAM Instance Profile ARN",
            )
        prefix = "InstanceMarketOptions.SpotOptions."
        kind = form.get(prefix + "SpotInstanceType", ["one-time"])[0]
        behaviour = form.get(prefix + "InstanceInterruptionBehavior", ["terminate"])[0]
        valid_until = form.get(prefix + "ValidUntil", [None])[0]
        if kind == "persistent" and behaviour not in ("stop", "hibernate"):
            return error(
                "InvalidParameterCombination",
                "Persistent spot requests are only supported with interruption behavior "
                "stop or hibernate.",
            )
        if valid_until and kind != "persistent":
            return error("InvalidParameterCombination", "ValidUntil needs a persistent request.")
        answer = moto(body)
        if answer[0] != 200 or kind != "persistent":
            return answer
        [instance_id] = re.findall(rb"<instanceId>(i-[0-9a-f]+)</instanceId>", answer[2])
        request_id = f"sir-{secrets.token_hex(4)}"
        self.requests[request_id] = SpotRequest(
            request_id,
            instance_id.decode(),
            body,
            behaviour,
            valid_until,
            tags=request_tags(form),
            dies=self.dies_pending,
        )
        self.dies_pending = None
        return self.with_request_ids(answer)

    def pending_deaths(self, body: bytes, moto: Moto) -> Answer:
        """moto's DescribeInstances, with a dying instance `pending` at its first answer and
        terminated, with its StateReason, from the second (the request relaunching)."""
        answer = moto(body)
        for request in list(self.requests.values()):
            doomed = request.instance_id
            if request.dies is None or doomed.encode() not in answer[2]:
                continue
            if not request.polled:
                request.polled = True
                answer = rewrite_state(answer, doomed, ("0", "pending"), None)
                continue
            code, message = request.dies
            request.dies = None
            ended = {"Action": "TerminateInstances", "Version": "2016-11-15"}
            ended["InstanceId.1"] = doomed
            self.terminate([doomed], moto(urllib.parse.urlencode(ended).encode()), moto)
            answer = rewrite_state(moto(body), doomed, ("48", "terminated"), (code, message))
        return answer

    def with_request_ids(self, answer: Answer) -> Answer:
        """moto's answer, each instance of ours carrying its `spotInstanceRequestId`."""
        if answer[0] != 200:
            return answer
        by_instance = {
            instance: r.request_id
            for r in self.requests.values()
            for instance in (*r.earlier, r.instance_id)
        }
        root = ET.fromstring(answer[2])
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        for item in root.iter(f"{ns}item"):
            instance_id = item.findtext(f"{ns}instanceId")
            if item.find(f"{ns}instanceState") is not None and instance_id in by_instance:
                ET.SubElement(item, f"{ns}spotInstanceRequestId").text = by_instance[instance_id]
        return 200, XML, ET.tostring(root, encoding="utf-8", xml_declaration=True)

    def describe(self, ids: list[str]) -> Answer:
        unknown = [i for i in ids if i not in self.requests]
        if unknown:
            return not_found(unknown[0])
        items = "".join(request_item(self.requests[i]) for i in (ids or list(self.requests)))
        return reply("DescribeSpotInstanceRequestsResponse", items)

    def cancel(self, ids: list[str]) -> Answer:
        unknown = [i for i in ids if i not in self.requests]
        if unknown:
            return not_found(unknown[0])
        for request_id in ids:
            self.requests[request_id].state = "cancelled"
        items = "".join(
            f"<item><spotInstanceRequestId>{i}</spotInstanceRequestId><state>cancelled</state>"
            "</item>"
            for i in ids
        )
        return reply("CancelSpotInstanceRequestsResponse", items)

    def terminate(self, ids: list[str], answer: Answer, moto: Moto) -> Answer:
        """moto terminates; an uncancelled persistent request then launches again."""
        if answer[0] != 200:
            return answer
        for request in self.requests.values():
            if request.instance_id in ids and request.state in ("open", "active", "interrupted"):
                form = urllib.parse.parse_qs(request.run_body.decode())
                form.pop("ClientToken", None)  # a new launch, not a retry of the old one
                again = moto(urllib.parse.urlencode(form, doseq=True).encode())
                [fresh] = re.findall(rb"<instanceId>(i-[0-9a-f]+)</instanceId>", again[2])
                self.relaunched.append((request.instance_id, fresh.decode()))
                request.earlier.append(request.instance_id)
                request.instance_id = fresh.decode()
        return answer


def rewrite_state(
    answer: Answer, instance_id: str, state: tuple[str, str], reason: tuple[str, str] | None
) -> Answer:
    """A DescribeInstances answer with one instance's `instanceState` (code, name) and, when
    given, its `stateReason` (code, message) replaced."""
    if answer[0] != 200:
        return answer
    root = ET.fromstring(answer[2])
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
    for item in root.iter(f"{ns}item"):
        found = item.find(f"{ns}instanceState")
        if item.findtext(f"{ns}instanceId") != instance_id or found is None:
            continue
        for name, value in zip(("code", "name"), state, strict=True):
            element = found.find(f"{ns}{name}")
            if element is None:
                element = ET.SubElement(found, f"{ns}{name}")
            element.text = value
        if reason is not None:
            old = item.find(f"{ns}stateReason")
            if old is not None:
                item.remove(old)
            why = ET.SubElement(item, f"{ns}stateReason")
            ET.SubElement(why, f"{ns}code").text = reason[0]
            ET.SubElement(why, f"{ns}message").text = reason[1]
    return 200, XML, ET.tostring(root, encoding="utf-8", xml_declaration=True)


def request_tags(form: dict[str, list[str]]) -> dict[str, str]:
    """The tags a RunInstances call gave its `spot-instances-request`."""
    tags: dict[str, str] = {}
    for key, value in form.items():
        spec = re.fullmatch(r"TagSpecification\.(\d+)\.ResourceType", key)
        if spec and value == ["spot-instances-request"]:
            n = spec.group(1)
            for j in range(1, 51):
                name = form.get(f"TagSpecification.{n}.Tag.{j}.Key")
                if name is None:
                    break
                tags[name[0]] = form.get(f"TagSpecification.{n}.Tag.{j}.Value", [""])[0]
    return tags


def request_item(request: SpotRequest) -> str:
    tags = "".join(
        f"<item><key>{key}</key><value>{value}</value></item>"
        for key, value in request.tags.items()
    )
    until = f"<validUntil>{request.valid_until}</validUntil>" if request.valid_until else ""
    code = {
        "active": "fulfilled",
        "expired": "schedule-expired",
        "interrupted": "instance-stopped-no-capacity",
    }.get(request.state, "request-canceled-and-instance-running")
    # An interruption with behaviour stop disables the request (user guide, "State changes
    # for a Spot request": instance-stopped-no-capacity, disabled, stopped).
    state = {"expired": "cancelled", "interrupted": "disabled"}.get(request.state, request.state)
    return (
        f"<item><spotInstanceRequestId>{request.request_id}</spotInstanceRequestId>"
        f"<type>persistent</type><state>{state}</state>"
        f"<status><code>{code}</code></status>"
        f"<instanceId>{request.instance_id}</instanceId>"
        f"<instanceInterruptionBehavior>{request.interruption}</instanceInterruptionBehavior>"
        f"{until}<tagSet>{tags}</tagSet></item>"
    )


def reply(response: str, items: str) -> Answer:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?><{response} xmlns="{XMLNS}">'
        "<requestId>59dbff89-35bd-4eac-99ed-be587EXAMPLE</requestId>"
        f"<spotInstanceRequestSet>{items}</spotInstanceRequestSet></{response}>"
    )
    return 200, XML, body.encode()


def not_found(request_id: str) -> Answer:
    return error(
        "InvalidSpotInstanceRequestID.NotFound",
        f"The spot instance request ID '{request_id}' does not exist",
    )


def iam_denied(action: str) -> Answer:
    """IAM's Query API error (IAM API reference, Common Errors: AccessDenied, HTTP 403)."""
    body = (
        f'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/{IAM_VERSION}/"><Error>'
        "<Type>Sender</Type><Code>AccessDenied</Code><Message>User: "
        "arn:aws:iam::123456789012:user/trainer is not authorized to perform: "
        f"iam:{action} because no identity-based policy allows the iam:{action} action"
        "</Message></Error><RequestId>4a7ce2d5-example</RequestId></ErrorResponse>"
    )
    return 403, XML, body.encode()


def pass_role_denied(profile: str) -> Answer:
    """EC2's refusal of a launch whose caller may not pass the profile's role."""
    role = profile.replace(":instance-profile/", ":role/")
    message = (
        "You are not authorized to perform this operation. User: "
        "arn:aws:iam::123456789012:user/trainer is not authorized to perform: iam:PassRole on "
        f"resource: {role} because no identity-based policy allows the iam:PassRole action. "
        "Encoded authorization failure message: hv3Vm6gpcLXNMMR5QfHbm0gOEXAMPLE"
    )
    return 403, XML, ERROR_XML.format(code="UnauthorizedOperation", message=message).encode()

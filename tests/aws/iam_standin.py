"""A loopback stand-in for IAM's policy simulator and STS's caller identity, in front of moto
(via aws_standin.py); every other IAM call (GetRole, CreateRole…) goes to moto.

moto has no SimulatePrincipalPolicy. This serves it as the IAM API reference documents it:
the Query protocol (a form-encoded POST, `Action=SimulatePrincipalPolicy`, `Version=2010-05-08`,
`PolicySourceArn`, `ActionNames.member.N`, `ResourceArns.member.N`,
`ContextEntries.member.N.ContextKeyName/ContextKeyValues.member.M/ContextKeyType`), answered with
`SimulatePrincipalPolicyResponse/SimulatePrincipalPolicyResult` holding `EvaluationResults`
(one `member` per action: `EvalActionName`, `EvalResourceName`, `EvalDecision` = allowed |
explicitDeny | implicitDeny, `MatchedStatements`, `MissingContextValues`) and `IsTruncated`;
errors are IAM's (Common Errors: AccessDenied, HTTP 403; InvalidInput, HTTP 400, for a
PolicySourceArn that is not a user, group or role).

STS GetCallerIdentity (STS API reference: `GetCallerIdentityResult` with `Arn`, `UserId`,
`Account`) answers `caller`, so a test can be an IAM user or an assumed role; moto's own answer
is an ARN no real account gives (`arn:aws:sts::…:user/moto`).

Tests set `decisions` (action → EvalDecision; an action not named is allowed) or
`refuse_simulate`; `simulated` records each call's principal, actions, resources and context.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from xml.sax.saxutils import escape

from aws_standin import Answer, AwsStandIn, Moto
from spot_standin import IAM_VERSION, XML, iam_denied

ACCOUNT = "123456789012"
TRAINER = f"arn:aws:iam::{ACCOUNT}:user/trainer"
STS_VERSION = "2011-06-15"
IAM_NS = f"https://iam.amazonaws.com/doc/{IAM_VERSION}/"


@dataclass(frozen=True)
class Simulated:
    principal: str
    actions: list[str]
    resources: list[str]
    context: dict[str, list[str]]


class IamStandIn(AwsStandIn):
    def __init__(self, moto_url: str) -> None:
        super().__init__(moto_url)
        self.caller = TRAINER
        self.decisions: dict[str, str] = {}
        self.refuse_simulate = False
        self.simulated: list[Simulated] = []

    def ec2(self, form: dict[str, list[str]], body: bytes, moto: Moto) -> Answer | None:
        action = (form.get("Action") or [""])[0]
        version = (form.get("Version") or [""])[0]
        if (action, version) == ("GetCallerIdentity", STS_VERSION):
            return self.identity()
        if (action, version) == ("SimulatePrincipalPolicy", IAM_VERSION):
            return self.simulate(form)
        return super().ec2(form, body, moto)  # a subclass that is also a SpotStandIn

    def identity(self) -> Answer:
        body = (
            f'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/{STS_VERSION}/">'
            f"<GetCallerIdentityResult><Arn>{self.caller}</Arn>"
            f"<UserId>AIDACKCEVSQ6C2EXAMPLE</UserId><Account>{ACCOUNT}</Account>"
            "</GetCallerIdentityResult><ResponseMetadata><RequestId>"
            "01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>"
            "</GetCallerIdentityResponse>"
        )
        return 200, XML, body.encode()

    def simulate(self, form: dict[str, list[str]]) -> Answer:
        if self.refuse_simulate:
            return iam_denied("SimulatePrincipalPolicy")
        principal = (form.get("PolicySourceArn") or [""])[0]
        if not re.fullmatch(rf"arn:aws:iam::{ACCOUNT}:(user|group|role)/[\w+=,.@/-]+", principal):
            return invalid_input(f"ARN {principal} is not valid.")
        actions = members(form, "ActionNames")
        resources = members(form, "ResourceArns") or ["*"]
        context = {
            form[key][0]: members(form, key.replace("ContextKeyName", "ContextKeyValues"))
            for key in form
            if re.fullmatch(r"ContextEntries\.member\.\d+\.ContextKeyName", key)
        }
        self.simulated.append(Simulated(principal, actions, resources, context))
        results = "".join(
            f"<member><EvalActionName>{escape(action)}</EvalActionName>"
            f"<EvalResourceName>{escape(resources[0])}</EvalResourceName>"
            f"<EvalDecision>{self.decisions.get(action, 'allowed')}</EvalDecision>"
            "<MatchedStatements/><MissingContextValues/></member>"
            for action in actions
        )
        body = (
            f'<SimulatePrincipalPolicyResponse xmlns="{IAM_NS}"><SimulatePrincipalPolicyResult>'
            f"<IsTruncated>false</IsTruncated><EvaluationResults>{results}</EvaluationResults>"
            "</SimulatePrincipalPolicyResult><ResponseMetadata><RequestId>"
            "7a62c49f-347e-4fc4-9331-6e8eEXAMPLE</RequestId></ResponseMetadata>"
            "</SimulatePrincipalPolicyResponse>"
        )
        return 200, XML, body.encode()


def members(form: dict[str, list[str]], name: str) -> list[str]:
    """A Query-protocol list, `Name.member.1`, `Name.member.2`…, in order."""
    found = []
    for n in range(1, 100):
        value = form.get(f"{name}.member.{n}")
        if value is None:
            break
        found.append(value[0])
    return found


def invalid_input(message: str) -> Answer:
    body = (
        f'<ErrorResponse xmlns="{IAM_NS}"><Error><Type>Sender</Type><Code>InvalidInput</Code>'
        f"<Message>{escape(message)}</Message></Error>"
        "<RequestId>4a7ce2d5-example</RequestId></ErrorResponse>"
    )
    return 400, XML, body.encode()

"""``sam validate --lint``, offline and stricter: SAM transform, then cfn-lint on the result.

cfn-lint on the SAM template alone checks property names and enums but not a ``!Ref`` or
``!GetAtt`` inside a Serverless resource; on the transformed CloudFormation it does (E1010,
E1020). Both steps run in-process, without credentials or network:

    cfn = transform_template(Path("template.yaml"))
    matches = lint(cfn)            # cfn-lint Match objects; rule ids start with E, W or I

Needs ``aws-sam-translator`` and ``cfn-lint`` (test-only dependencies).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

# Local paths that `sam build` / `sam package` replace with S3 locations.
_LOCAL_CODE = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}
_DUMMY_URI = "s3://offline-validation/artifact.zip"


class OfflinePolicyLoader:
    """Managed-policy name -> ARN lookups would call IAM; we only use ARNs and SAM policy
    templates (which the translator ships in ``policy_templates_data``), so an empty map is right."""

    def load(self) -> dict[str, str]:
        return {}


@contextmanager
def _region(region: str) -> Iterator[None]:
    # The translator reads the region (partition, ARN building) from the environment.
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = region
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved


def load_template(path: Path) -> dict[str, Any]:
    """The SAM template as a dict, short-form intrinsics (``!Ref``) turned into their long form."""
    from samtranslator.yaml_helper import yaml_parse

    return yaml_parse(path.read_text())


def transform_template(path: Path, *, parameters: dict[str, str] | None = None,
                       region: str = "us-east-1") -> dict[str, Any]:
    """The CloudFormation template the ``AWS::Serverless`` transform makes of ``path``.

    Local ``CodeUri``/``ContentUri`` folders become dummy ``s3://`` URIs, as ``sam validate`` does.

    Raises
    ------
    samtranslator.model.exceptions.InvalidDocumentException
        The template is not valid SAM; ``.causes`` lists each problem.
    """
    from samtranslator.translator.transform import transform

    tpl = load_template(path)
    for resource in tpl.get("Resources", {}).values():
        prop = _LOCAL_CODE.get(resource.get("Type", ""))
        props = resource.get("Properties", {})
        if prop and isinstance(props.get(prop), str) and not props[prop].startswith("s3://"):
            props[prop] = _DUMMY_URI
    with _region(region):
        return transform(tpl, parameters or {}, OfflinePolicyLoader())


def lint(cfn: dict[str, Any], *, region: str = "us-east-1") -> list[Any]:
    """cfn-lint's findings on a (transformed) CloudFormation template."""
    from cfnlint.api import ManualArgs
    from cfnlint.api import lint as cfn_lint

    return list(cfn_lint(json.dumps(cfn), config=ManualArgs(regions=[region])))


def describe(match: Any) -> str:
    """One line per finding: rule id, where, what."""
    path = "/".join(str(p) for p in (getattr(match, "path", None) or []))
    message = match.message if len(match.message) <= 300 else match.message[:300] + "..."
    return f"{match.rule.id} {path}: {message}"

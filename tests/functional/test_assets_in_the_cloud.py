"""Bots and skills in the cloud: `boternity sync` uploads them; a function fetches one folder into
its container cache and runs it."""

from __future__ import annotations

import boto3
from moto import mock_aws

from boternity.cli.client import sync_assets
from tests.conftest import EXAMPLES


def test_sync_uploads_and_a_function_runs_the_skill_from_the_bucket(tmp_path, monkeypatch):
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="proj")
        keys = sync_assets("proj", bots=EXAMPLES / "bots", skills=EXAMPLES / "skills", s3=s3)
        assert "skills/wrap-json/skill.wasm" in keys and "bots/researcher/IDENTITY.md" in keys
        monkeypatch.delenv("BOTERNITY_SKILLS_DIR", raising=False)
        monkeypatch.setenv("BOTERNITY_BUCKET", "proj")
        import boternity.runtime.assets as assets

        monkeypatch.setattr(assets, "_CACHE", tmp_path / "cache")
        folder = assets.asset_dir("skills", "wrap-json")
        from boternity.executors.skill import load_skill, run_skill

        out = run_skill(load_skill(folder, "wrap-json"), {"x": 1})
        assert out["output"] == {"skill": "wrap", "input": {"x": 1}}
        assert (tmp_path / "cache" / "skills" / "wrap-json" / "skill.wasm").is_file()

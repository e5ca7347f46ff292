"""Made-up districts: replicas of the five districts' feeds under other county codes of the delta."""

from __future__ import annotations

import shutil

import gb2260

from pingan.core.feed_spec import load_specs
from pingan.core.settings import PROJECT_ROOT
from pingan_sim.districts import REAL_CODES, made_up_codes, replicas, write_specs


def test_made_up_codes_are_distinct_delta_counties_other_than_the_five():
    codes = made_up_codes(40)
    assert len(set(codes)) == 40 and not set(codes) & set(REAL_CODES)
    for code in codes:
        division = gb2260.get(code)
        assert division.is_county and code[:2] in ("31", "32", "33", "34"), code


def test_replica_specs_validate_and_read_only_the_replicas_own_sources(tmp_path):
    connectors = tmp_path / "connectors"
    shutil.copytree(PROJECT_ROOT / "connectors", connectors)
    real = load_specs(connectors)
    landing = tmp_path  # the deployment's landing root; replicas live below it
    reps = replicas(2, tmp_path / "replicas")
    feeds = [f for rep in reps for f in write_specs(rep, PROJECT_ROOT / "connectors", connectors, landing)]
    specs = load_specs(connectors)  # validated like any onboarded feed
    assert set(specs) == set(real) | set(feeds) and len(feeds) == 2 * len(real)
    codes = {specs[f].jurisdiction_code for f in feeds}
    # as in the real federation, Jinshan's replica has no feed of its own (it is the joint platform's side b)
    assert len(codes) == 2 * len({s.jurisdiction_code for s in real.values()}) and not codes & set(REAL_CODES)
    for rep in reps:
        for feed, spec in real.items():
            copy = specs[rep.feed(feed)]
            assert copy.jurisdiction_code == rep.codes[spec.jurisdiction_code]
            assert copy.entity == spec.entity and copy.code_mapping == spec.code_mapping
            t = copy.transport
            if t.kind in ("file_drop", "s3_landing"):
                # relative to the landing root, inside the replica's own folder
                assert t.path.startswith(f"{(rep.home / 'sim').relative_to(landing).as_posix()}/"), t.path
            for env in ("url_env", "base_url_env", "token_env"):
                if getattr(t, env, None):
                    assert getattr(t, env).endswith(f"_R{rep.index}")

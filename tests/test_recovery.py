"""A damaged middle artifact, run through Snakemake: named with the command that remakes
it, and that command works (deleting the file would not: Snakemake does not remake a
missing middle artifact whose dependants are up to date)."""

from __future__ import annotations

import pytest

from neuron_concepts import provenance
from test_trust import copy_of

pytestmark = pytest.mark.workflow


def test_a_truncated_cosine_file_is_named_and_the_named_command_remakes_it(finished_workflow,
                                                                            tmp_path):
    flow = copy_of(finished_workflow, tmp_path / "flow")
    cosines = next(flow.path("results/similarity").rglob("cos.npz"))
    relative = cosines.relative_to(flow.root).as_posix()
    original = cosines.read_bytes()
    cosines.write_bytes(original[:1000])

    failed = flow.snakemake(check=False)
    assert failed.returncode != 0
    command = f"snakemake --cores all --forcerun {relative}"
    assert relative in failed.stdout and command in failed.stdout
    assert "BadZipFile" not in failed.stdout.replace("cannot be read as an npz", "")

    flow.snakemake(*command.split()[3:])
    assert cosines.read_bytes() == original
    assert provenance.verify_manifest(flow.path("results")) == []

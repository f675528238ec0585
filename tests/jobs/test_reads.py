"""The jobs domain's read API, on both catalogs: what other domains may read of jobs."""

from __future__ import annotations

from aitip.catalog import Catalog
from aitip.jobs import reads
from aitip.jobs.tables import JobRecord
from aitip.projects.tables import ProjectRecord


def test_jobs_of_a_notebook_are_filtered_by_a_tag_prefix_in_the_database(catalog_url: str) -> None:
    """The limit counts only the matching jobs (a model's 3 packagings are found behind 5 of another's), and
    the prefix is literal: ``_`` and ``%`` match only themselves."""
    catalog = Catalog(catalog_url)
    catalog.migrate()
    with catalog.session() as session:
        project = ProjectRecord(name="alpha", display_name="alpha", created_by="ann")
        session.add(project)
        session.flush()
        models = ["digits/1", "digits/2", "dig_ts/1", "digits/3", *[f"other/{n}" for n in range(5)], "di%/1"]
        for model in models:
            session.add(JobRecord(project_id=project.id, owner="ann", notebook_name="optimize", notebook_sha256="0" * 64,
                                  kernel="aitip-triton", tags={"optimized_model": model}))
        session.add(JobRecord(project_id=project.id, owner="ann", notebook_name="train", notebook_sha256="0" * 64,
                              kernel="python3", tags={"optimized_model": "digits/9"}))
        session.flush()
        project_id = project.id

    with catalog.session() as session:
        def found(prefix: str | None, limit: int = 3) -> list[str]:
            jobs = reads.runs_of_notebook(session, project_id, "optimize", limit,
                                          tag_prefix=("optimized_model", prefix) if prefix is not None else None)
            return [job.tags["optimized_model"] for job in jobs]

        assert found("digits/") == ["digits/3", "digits/2", "digits/1"]
        assert found("dig_ts/") == ["dig_ts/1"]
        assert found("di%/") == ["di%/1"]
        assert found("nothing/") == []
        assert found(None) == ["di%/1", "other/4", "other/3"]

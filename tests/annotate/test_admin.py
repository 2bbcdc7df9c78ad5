"""The admin dashboard and downloads: separate credentials, progress, exports."""

from __future__ import annotations

import io

import polars as pl
from fastapi.testclient import TestClient

from persona_testbed.annotate import LABEL_SCHEMA, StudyConfig, create_app, create_study

from .conftest import StudyFixture, csrf_of, path_of


def complete(client: TestClient, link: str, choices: str) -> None:
    page = client.get(path_of(link)).text
    page = client.post("/study/start", data={"csrf_token": csrf_of(page)}).text
    for position, choice in enumerate(choices):
        form = {"csrf_token": csrf_of(page), "position": str(position), "choice": choice}
        page = client.post("/study/answer", data={**form, "justification": "z" * 15}).text


def admin_path(study: StudyFixture) -> str:
    return path_of(study.created.admin_url)


def test_admin_needs_its_own_token(client: TestClient, study: StudyFixture) -> None:
    assert client.get("/admin/s1").status_code == 403
    assert client.get("/admin/s1?token=wrong").status_code == 403
    assert client.get("/admin/nostudy?token=wrong").status_code == 403
    assert client.get("/admin/s1/export.csv").status_code == 403
    bad_bearer = client.get("/admin/s1", headers={"authorization": "Bearer nope"})
    assert bad_bearer.status_code == 403 and "Access denied" in bad_bearer.text
    # A participant session is no admin session.
    complete(client, study.created.invitations[0].url, "1")
    assert client.get("/admin/s1").status_code == 403


def test_token_link_logs_in_and_leaves_the_address_bar(study: StudyFixture) -> None:
    with TestClient(create_app(study.database), follow_redirects=False) as admin:
        login = admin.get(admin_path(study))
        assert login.status_code == 303 and login.headers["location"] == "/admin/s1"
        assert "httponly" in login.headers["set-cookie"].lower()
        assert "path=/admin/s1" in login.headers["set-cookie"].lower()
        page = admin.get("/admin/s1")
    assert page.status_code == 200 and "Study s1" in page.text


def test_admin_cookie_is_per_study(study: StudyFixture, run_dir) -> None:
    config = StudyConfig(run=run_dir, personas=1, questions=1, per_persona=1, majority=1)
    other = create_study(study.database, config.model_copy(update={"study_id": "s2"}))
    with TestClient(create_app(study.database)) as admin:
        admin.get(admin_path(study))
        assert admin.get("/admin/s1").status_code == 200
        assert admin.get("/admin/s2").status_code == 403
        token = other.admin_url.split("token=")[1]
        header = {"authorization": f"Bearer {token}"}
        assert admin.get("/admin/s2", headers=header).status_code == 200


def test_dashboard_progress_and_exports(study: StudyFixture) -> None:
    app = create_app(study.database)
    invitations = study.created.invitations
    # Slots 0 and 2 share a persona (round-robin over 2 personas).
    assert invitations[0].persona_id == invitations[2].persona_id
    for index, choices in [(0, "111"), (2, "11"), (1, "1")]:
        with TestClient(app) as participant:
            complete(participant, invitations[index].url, choices)
    token = study.created.admin_url.split("token=")[1]
    with TestClient(app, headers={"authorization": f"Bearer {token}"}) as admin:
        page = admin.get("/admin/s1").text
        assert "1 of 4 participants finished" in page
        assert "6 of 12 answers saved" in page
        csv = admin.get("/admin/s1/export.csv")
        parquet = admin.get("/admin/s1/export.parquet")
        participants = admin.get("/admin/s1/participants.csv")
        majority = admin.get("/admin/s1/majority.csv?majority=1")
        assert admin.get("/admin/s1/export.xlsx").status_code == 400
    assert csv.headers["content-disposition"] == 'attachment; filename="s1-labels.csv"'
    from_csv = pl.read_csv(io.BytesIO(csv.content), infer_schema=False)
    from_parquet = pl.read_parquet(io.BytesIO(parquet.content))
    assert from_csv.columns == list(LABEL_SCHEMA) == from_parquet.columns
    assert from_csv.height == 6 == from_parquet.height
    assert set(from_csv.get_column("annotator_kind")) == {"human"}
    assert from_csv.get_column("label").is_in(["A", "B"]).all()
    rows = pl.read_csv(io.BytesIO(participants.content))
    assert rows.get_column("answered").to_list() == [3, 1, 2, 0]
    votes = pl.read_csv(io.BytesIO(majority.content))
    assert votes.height == 3  # every answered item has a label at threshold 1

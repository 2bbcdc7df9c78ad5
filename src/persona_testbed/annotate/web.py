"""The FastAPI application: participant routes, admin routes, error pages.

Participants and admins are kept apart: different URL prefixes, different signed cookies
(participant: `/`, admin: `/admin/<study>`), different credentials. Endpoints are plain
functions (FastAPI runs them in a thread pool) over short database transactions.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import Scope

from persona_testbed.annotate import participation
from persona_testbed.annotate.dashboard import participants_table, study_progress
from persona_testbed.annotate.db import Database
from persona_testbed.annotate.middleware import (
    DEFAULT_MAX_BODY_BYTES,
    BodySizeLimit,
    SecurityHeaders,
)
from persona_testbed.annotate.models import Study
from persona_testbed.annotate.pages import STATIC_DIR, STATUS_KINDS, Pages
from persona_testbed.annotate.participation import (
    AccessDenied,
    AccessProblem,
    ParticipantView,
    SubmitStatus,
)
from persona_testbed.annotate.results import labels, majority_labels, table_bytes
from persona_testbed.annotate.study import PROLIFIC_QUERY
from persona_testbed.annotate.tokens import (
    ADMIN_COOKIE,
    ADMIN_MAX_AGE_S,
    PARTICIPANT_COOKIE,
    PARTICIPANT_MAX_AGE_S,
    Signer,
    secret_matches,
)

log = logging.getLogger(__name__)


class CsrfRejected(Exception):
    """A POST without the session's CSRF token."""


class AdminDenied(Exception):
    """No valid admin token or admin cookie for this study."""


def _redirect(request: Request, path: str) -> RedirectResponse:
    return RedirectResponse(str(request.scope.get("root_path", "")) + path, status_code=303)


def _is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def create_app(database: Database, *, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> FastAPI:
    """The study server for every study in `database`."""
    pages = Pages()
    signer = Signer(database.secret)
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.database = database

    def error_page(scope: Scope, kind: str, status: int) -> Response:
        return pages.error(scope, kind, status)

    app.add_middleware(
        BodySizeLimit,
        max_bytes=max_body_bytes,
        too_large=lambda scope: error_page(scope, "too_large", 413),
    )
    app.add_middleware(SecurityHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(AccessDenied)
    def _access_denied(request: Request, exc: AccessDenied) -> Response:
        return error_page(request.scope, exc.problem.kind, exc.problem.status)

    @app.exception_handler(CsrfRejected)
    def _csrf(request: Request, exc: CsrfRejected) -> Response:
        return error_page(request.scope, "csrf", 403)

    @app.exception_handler(AdminDenied)
    def _admin_denied(request: Request, exc: AdminDenied) -> Response:
        return error_page(request.scope, "admin_denied", 403)

    @app.exception_handler(StarletteHTTPException)
    def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        kind = STATUS_KINDS.get(exc.status_code, "bad_request")
        return error_page(request.scope, kind, exc.status_code)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return error_page(request.scope, "bad_request", 400)

    @app.exception_handler(Exception)
    def _unexpected(request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_page(request.scope, "server_error", 500)

    app.include_router(_participant_routes(database, pages, signer))
    app.include_router(_admin_routes(database, pages, signer))
    return app


def _participant_routes(database: Database, pages: Pages, signer: Signer) -> APIRouter:
    router = APIRouter()

    def session_of(request: Request) -> tuple[int, str]:
        session = signer.read_participant_cookie(request.cookies.get(PARTICIPANT_COOKIE))
        if session is None:
            raise AccessDenied(AccessProblem.NO_SESSION)
        return session

    def check_csrf(nonce: str, submitted: str | None) -> None:
        if not signer.csrf_ok(nonce, submitted):
            raise CsrfRejected()

    def enter(request: Request, slot_pk: int) -> Response:
        response = _redirect(request, "/study")
        response.set_cookie(
            PARTICIPANT_COOKIE,
            signer.participant_cookie(slot_pk),
            max_age=PARTICIPANT_MAX_AGE_S,
            path="/",
            httponly=True,
            samesite="lax",
            secure=_is_https(request),
        )
        return response

    def item_page(
        request: Request,
        view: ParticipantView,
        nonce: str,
        *,
        errors: list[str] | None = None,
        choice: str | None = None,
        justification: str = "",
        status: int = 200,
    ) -> Response:
        context = {
            "view": view,
            "item": view.current,
            "csrf_token": signer.csrf_token(nonce),
            "errors": errors or [],
            "choice": choice,
            "justification": justification,
            "max_justification": participation.MAX_JUSTIFICATION,
        }
        return pages.render(request, "item.html", context, status)

    @router.get("/")
    def home(request: Request) -> Response:
        return pages.render(request, "home.html", {})

    @router.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)  # browsers ask for it; there is none

    @router.get("/i/{token}")
    def invitation(request: Request, token: str) -> Response:
        return enter(request, participation.enter_with_invitation(database, token))

    @router.get("/prolific/{study_id}")
    def prolific(
        request: Request,
        study_id: str,
        pid: Annotated[str | None, Query(alias="PROLIFIC_PID")] = None,
        prolific_study_id: Annotated[str | None, Query(alias="STUDY_ID")] = None,
        session_id: Annotated[str | None, Query(alias="SESSION_ID")] = None,
    ) -> Response:
        slot_pk = participation.enter_with_prolific(
            database, study_id, pid, prolific_study_id, session_id
        )
        return enter(request, slot_pk)

    @router.get("/study")
    def study_page(request: Request) -> Response:
        slot_pk, nonce = session_of(request)
        view = participation.load_view(database, slot_pk)
        if view.completed:
            return _redirect(request, "/study/complete")
        if not view.started:
            return instructions_page(request, view, nonce)
        return item_page(request, view, nonce)

    def instructions_page(request: Request, view: ParticipantView, nonce: str) -> Response:
        context = {"view": view, "csrf_token": signer.csrf_token(nonce)}
        return pages.render(request, "instructions.html", context)

    @router.get("/study/instructions")
    def instructions(request: Request) -> Response:
        slot_pk, nonce = session_of(request)
        return instructions_page(request, participation.load_view(database, slot_pk), nonce)

    @router.post("/study/start")
    def start(request: Request, csrf_token: Annotated[str | None, Form()] = None) -> Response:
        slot_pk, nonce = session_of(request)
        check_csrf(nonce, csrf_token)
        participation.start(database, slot_pk)
        return _redirect(request, "/study")

    @router.post("/study/answer")
    def answer(
        request: Request,
        csrf_token: Annotated[str | None, Form()] = None,
        position: Annotated[str | None, Form()] = None,
        choice: Annotated[str | None, Form()] = None,
        justification: Annotated[str, Form()] = "",
    ) -> Response:
        slot_pk, nonce = session_of(request)
        check_csrf(nonce, csrf_token)
        if position is None or not position.isdigit():
            raise AccessDenied(AccessProblem.BAD_REQUEST)
        result = participation.submit_answer(
            database, slot_pk, int(position), choice, justification
        )
        if result.status is SubmitStatus.INVALID:
            view = participation.load_view(database, slot_pk)
            if view.current is None:
                return _redirect(request, "/study")
            stale = "stale_page" in result.errors
            return item_page(
                request,
                view,
                nonce,
                errors=result.errors,
                choice=None if stale else choice,
                justification="" if stale else justification,
                status=422,
            )
        return _redirect(request, "/study")

    @router.get("/study/complete")
    def complete(request: Request) -> Response:
        slot_pk, _nonce = session_of(request)
        view = participation.load_view(database, slot_pk)
        if not view.completed:
            return _redirect(request, "/study")
        if view.prolific_redirect:
            return RedirectResponse(view.prolific_redirect, status_code=303)
        return pages.render(request, "complete.html", {"view": view})

    return router


def _admin_routes(database: Database, pages: Pages, signer: Signer) -> APIRouter:
    router = APIRouter(prefix="/admin")

    def find_study(study_id: str) -> Study:
        with database.read() as session:
            study = session.scalar(select(Study).where(Study.study_id == study_id))
        if study is None:
            raise AdminDenied()  # the same answer as a bad token: study names stay private
        return study

    def bearer(request: Request) -> str | None:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None

    def admin_study(request: Request, study_id: str) -> Study:
        study = find_study(study_id)
        token = bearer(request)
        if token is not None:
            if secret_matches(token, study.admin_token_hash):
                return study
            raise AdminDenied()
        if signer.read_admin_cookie(request.cookies.get(ADMIN_COOKIE)) == study.study_id:
            return study
        raise AdminDenied()

    def majority_of(request: Request, study: Study) -> int:
        value = request.query_params.get("majority")
        if value is None:
            return study.majority
        if not value.isdigit() or int(value) < 1:
            raise AccessDenied(AccessProblem.BAD_REQUEST)
        return int(value)

    def download(frame_bytes: bytes, name: str, kind: str) -> Response:
        media = "text/csv; charset=utf-8" if kind == "csv" else "application/vnd.apache.parquet"
        return Response(
            frame_bytes,
            media_type=media,
            headers={"content-disposition": f'attachment; filename="{name}"'},
        )

    @router.get("/{study_id}")
    def dashboard(request: Request, study_id: str, token: str | None = None) -> Response:
        if token is not None:
            # Log in with the token from the link, then drop it from the address bar.
            study = find_study(study_id)
            if not secret_matches(token, study.admin_token_hash):
                raise AdminDenied()
            base = str(request.scope.get("root_path", ""))
            response = _redirect(request, f"/admin/{study.study_id}")
            response.set_cookie(
                ADMIN_COOKIE,
                signer.admin_cookie(study.study_id),
                max_age=ADMIN_MAX_AGE_S,
                path=f"{base}/admin/{study.study_id}",
                httponly=True,
                samesite="lax",
                secure=_is_https(request),
            )
            return response
        study = admin_study(request, study_id)
        progress = study_progress(database, study, majority_of(request, study))
        prolific_url = f"{study.public_url}/prolific/{study.study_id}?{PROLIFIC_QUERY}"
        context = {"study": study, "progress": progress, "prolific_url": prolific_url}
        return pages.render(request, "admin.html", context)

    @router.get("/{study_id}/export.{kind}")
    def export(request: Request, study_id: str, kind: str) -> Response:
        study = admin_study(request, study_id)
        if kind not in ("csv", "parquet"):
            raise AccessDenied(AccessProblem.BAD_REQUEST)
        data = table_bytes(labels(database, study), kind)
        return download(data, f"{study.study_id}-labels.{kind}", kind)

    @router.get("/{study_id}/majority.{kind}")
    def majority(request: Request, study_id: str, kind: str) -> Response:
        study = admin_study(request, study_id)
        if kind not in ("csv", "parquet"):
            raise AccessDenied(AccessProblem.BAD_REQUEST)
        frame = majority_labels(labels(database, study), majority_of(request, study))
        return download(table_bytes(frame, kind), f"{study.study_id}-majority.{kind}", kind)

    @router.get("/{study_id}/participants.csv")
    def participants(request: Request, study_id: str) -> Response:
        study = admin_study(request, study_id)
        frame = participants_table(study_progress(database, study))
        return download(table_bytes(frame, "csv"), f"{study.study_id}-participants.csv", "csv")

    return router

"""Survey routes: create, list, read, answer, close, results, CSV export."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from fastapi.responses import StreamingResponse

from hearth_content.surveys import service
from hearth_content.surveys.models import (
    QuestionPublic,
    Survey,
    SurveyCreate,
    SurveyPublic,
    SurveyResponseCreate,
    SurveyResponsePublic,
    SurveyResults,
)
from servicekit.deps import RuntimeDep, UnitOfWorkDep
from servicekit.identity import CurrentPrincipal
from servicekit.pagination import Page, PageDep, make_page

router = APIRouter(tags=["surveys"])


def _public(survey: Survey, responses: int) -> SurveyPublic:
    return SurveyPublic(
        id=survey.id,
        community_id=survey.community_id,
        author_id=survey.author_id,
        title=survey.title,
        description=survey.description,
        questions=[QuestionPublic.model_validate(q) for q in survey.questions],
        opens_at=survey.opens_at,
        closes_at=survey.closes_at,
        closed_at=survey.closed_at,
        editable=survey.editable,
        results_public=survey.results_public,
        state=service.state_of(survey),
        response_count=responses,
        created_at=survey.created_at,
    )


@router.post("/communities/{community_id}/surveys", status_code=status.HTTP_201_CREATED)
async def create_survey(
    community_id: uuid.UUID, body: SurveyCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SurveyPublic:
    """Open a survey (active, unmuted members; questions are fixed once it exists)."""
    survey = await service.create_survey(uow=uow, community_id=community_id, data=body, actor=actor)
    return _public(survey, 0)


@router.get("/communities/{community_id}/surveys")
async def list_surveys(
    community_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, page: PageDep
) -> Page[SurveyPublic]:
    """A community's surveys, newest first."""
    rows = await service.list_surveys(uow=uow, community_id=community_id, actor=actor, page=page)
    counts = await service.response_counts(uow, survey_ids=[s.id for s in rows])
    items = [_public(s, counts.get(s.id, 0)) for s in rows]
    return make_page(items, page.limit, lambda s: [str(s.id)])


@router.get("/surveys/{survey_id}")
async def get_survey(
    survey_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SurveyPublic:
    """One survey the caller may read."""
    survey, _ = await service.get_survey(uow=uow, survey_id=survey_id, actor=actor)
    counts = await service.response_counts(uow, survey_ids=[survey.id])
    return _public(survey, counts.get(survey.id, 0))


@router.put("/surveys/{survey_id}/responses/me")
async def answer_survey(
    survey_id: uuid.UUID, body: SurveyResponseCreate, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SurveyResponsePublic:
    """Answer a survey, or change one's answers until it closes if it allows that."""
    response = await service.answer(uow=uow, survey_id=survey_id, answers=body.answers, actor=actor)
    return SurveyResponsePublic.model_validate(response, from_attributes=True)


@router.get("/surveys/{survey_id}/responses/me")
async def my_response(
    survey_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SurveyResponsePublic:
    """The caller's own response."""
    response = await service.my_response(uow=uow, survey_id=survey_id, actor=actor)
    return SurveyResponsePublic.model_validate(response, from_attributes=True)


@router.post("/surveys/{survey_id}/close")
async def close_survey(
    survey_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SurveyPublic:
    """Close a survey early (its author, staff, the community's admins)."""
    survey = await service.close_survey(uow=uow, survey_id=survey_id, actor=actor)
    counts = await service.response_counts(uow, survey_ids=[survey.id])
    return _public(survey, counts.get(survey.id, 0))


@router.get("/surveys/{survey_id}/results")
async def survey_results(
    survey_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal
) -> SurveyResults:
    """The results summary per question (members when the survey shows them, else its team)."""
    return await service.results(uow=uow, survey_id=survey_id, actor=actor)


@router.get(
    "/surveys/{survey_id}/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}}},
)
async def export_survey(
    survey_id: uuid.UUID, uow: UnitOfWorkDep, actor: CurrentPrincipal, runtime: RuntimeDep
) -> StreamingResponse:
    """Every response as CSV, streamed (its author, staff, the community's admins)."""
    questions = await service.export_access(uow=uow, survey_id=survey_id, actor=actor)
    return StreamingResponse(
        service.export_csv(runtime, survey_id=survey_id, questions=questions),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="survey-{survey_id}.csv"'},
    )

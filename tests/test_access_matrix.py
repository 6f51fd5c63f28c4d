"""The authorization matrix: every operation of the platform's OpenAPI by every kind of caller.

The operations come from the merged document the gateway serves (`/openapi.json`: the gateway's
own routes and every service's under `/api/<context>`), so a route added tomorrow joins the
matrix by itself, and fails it until someone writes its line in `POLICY` below (the table is
the review surface: one line per operation, "who may, and what everyone else gets").

One world is seeded through the gateway: community A (private, open to join) with an owner, an
admin, a moderator, a member, a muted member and a target member (whom moderation routes act
on), and its objects (post, comment, poll, survey, suggestion, column, activity, registration,
draw, question, series, report → queue entry, sanction, appeal, legal hold, goal, badge, perk,
invite, application, metrics report…). Every path parameter is filled with A's real objects,
every body from the operation's own schema (or `BODIES` where a real one matters), and each
cell asserts the status class: "ok" (not 401/403/404) or the exact refusal. An owner of another
community B is one of the callers: A's objects refuse it everywhere.

Writes that would change the world for other cells (`DESTRUCTIVE`) run after all the others,
one operation at a time, refused callers first. How to add a route's policy: docs/testing-access.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from servicekit.testing.harness import eventually
from servicekit.testing.platform import Platform

PROBLEM = "application/problem+json"
CONCURRENCY = 24
OPEN_PATHS = {"/healthz", "/readyz", "/openapi.json", "/docs", "/.well-known/jwks.json"}
# Credential exchanges: the credential is the body, anyone may try (test_gateway_login.py).
CREDENTIAL_PATHS = {"/auth/token", "/auth/refresh", "/auth/logout"}

# --- Callers ------------------------------------------------------------------------------------
ROLES = (
    "padmin",  # platform admin
    "operator",  # platform operator
    "owner",  # owner of community A
    "cadmin",  # admin of community A
    "mod",  # moderator of community A
    "member",  # plain member of A
    "muted",  # member of A, muted for a day
    "outsider",  # signed-in user, member of nothing
    "b_owner",  # owner of community B: a community admin, but of another community
    "key",  # API key holding every scope a route may need (KEY_SCOPES)
    "key0",  # API key with a scope nothing asks for
    "anon",  # no credentials
)
# The gateway's route scope map (gateway/README.md, api_key_route_scopes) and metrics' own.
KEY_SCOPES = {
    "members:read",
    "content:read",
    "events:read",
    "metrics:read",
    "metrics:conversions:write",
}
GROUPS: dict[str, tuple[str, ...]] = {
    "staff": ("padmin", "operator"),
    "team": ("owner", "cadmin"),
    "mods": ("owner", "cadmin", "mod"),
    "members": ("owner", "cadmin", "mod", "member", "muted"),
    "strangers": ("outsider", "b_owner"),
    "users": ROLES[:9],
    "keys": ("key", "key0"),
}


def rule(spec: str) -> dict[str, int | str]:
    """Parse "ok: staff team | 404: strangers | 403: rest" into role → "ok" or a status.

    Groups are the names in GROUPS or single roles; `rest` is every role not named yet; an
    anonymous caller is 401 unless the spec says otherwise."""
    out: dict[str, int | str] = {}
    rest: int | str | None = None
    for part in spec.split("|"):
        outcome, _, who = part.partition(":")
        value: int | str = outcome.strip() if outcome.strip() == "ok" else int(outcome)
        for name in who.split():
            if name == "rest":
                rest = value
                continue
            for role in GROUPS.get(name, (name,)):
                assert role in ROLES, (spec, role)
                out.setdefault(role, value)
    out.setdefault("anon", 401)  # `rest` never covers the anonymous caller
    for role in ROLES:
        if role not in out:
            assert rest is not None, f"{spec!r} says nothing about {role}"
            out[role] = rest
    return out


# --- The policy: one line per operation ----------------------------------------------------------
# Named shapes first (most routes share one), then the table. Read a shape as: who is allowed,
# and the exact answer every other caller gets.
# staff = platform admin + operator; team = A's owner + admin; mods = team + moderator;
# members = mods + member + muted; strangers = signed-in non-members (B's owner among them);
# keys = the scoped and the unscoped API key. Private A: content and members hide it (404),
# events and moderation refuse (403), as their docs say.
STAFF = "ok: staff | 403: rest"  # platform operations (outboxes, dead letters, audit)
ADMIN = "ok: padmin | 403: rest"  # platform admin only (accounts, keys, webhooks, PII keys)
ANY_USER = "ok: users | 403: rest"  # self-service on the caller's own rows; keys refused
ANY_USER_OR_KEY = "ok: users key | 403: rest"  # listings filtered to what the caller may see
TEAM = "ok: team staff | 404: strangers | 403: rest"  # community management, A hidden
TEAM_403 = "ok: team staff | 403: rest"  # community management (events: strangers 403)
TEAM_READ = "ok: team staff | 404: strangers key | 403: rest"  # members' team reads
TEAM_OR_KEY = "ok: team staff key | 404: strangers | 403: rest"  # metrics: team or metrics:read
MODS = "ok: mods staff | 403: rest"  # moderation work (moderators included)
MODS_404 = "ok: mods staff | 404: strangers | 403: rest"  # content's team work, A hidden
MODS_READ = "ok: mods staff | 404: strangers key | 403: rest"
MEMBERS_READ = "ok: members staff | 403: key0 | 404: rest"  # content of private A: members
MEMBERS_403 = "ok: members staff | 403: rest"  # events of A: members read, strangers 403
VOICE = "ok: mods staff member | 404: strangers | 403: rest"  # writes: the muted are refused
VOICE_403 = "ok: mods staff member | 403: rest"  # events' writes: the muted refused

# A line that is not a shape says why where it is not obvious. Pinned codes other than 401/403/404
# (a 409 or 422 for allowed callers) are cells whose object cannot be put in the needed state.
POLICY: dict[str, str] = {
    # gateway
    "POST /auth/api-keys": ADMIN,
    "GET /auth/api-keys": ADMIN,
    "POST /admin/webhooks": ADMIN,
    "GET /admin/webhooks": ADMIN,
    "POST /admin/webhooks/rotate-secrets-key": ADMIN,
    "PATCH /admin/webhooks/{subscription_id}": "404: padmin | 403: rest",
    "POST /admin/webhooks/{subscription_id}/secret": "404: padmin | 403: rest",
    "GET /admin/webhooks/{subscription_id}/deliveries": "404: padmin | 403: rest",
    "POST /admin/webhooks/{subscription_id}/replay": "404: padmin | 403: rest",
    "GET /admin/outbox": STAFF,
    # members
    "GET /api/members/admin/outbox": STAFF,
    "GET /api/members/admin/dead-letters": STAFF,
    "POST /api/members/admin/dead-letters/{dead_letter_id}/replay": "404: staff | 403: rest",
    "POST /api/members/communities": STAFF,
    "GET /api/members/communities": ANY_USER_OR_KEY,
    "GET /api/members/communities/{community_id}": MEMBERS_READ,
    "PATCH /api/members/communities/{community_id}": TEAM,
    "GET /api/members/communities/{community_id}/goals": MEMBERS_READ,
    "POST /api/members/communities/{community_id}/goals": TEAM,
    "POST /api/members/communities/{community_id}/members": (
        "ok: members staff | 403: keys | 404: rest"
    ),
    "GET /api/members/communities/{community_id}/members": MEMBERS_READ,
    "POST /api/members/communities/{community_id}/applications": (
        "ok: members | 404: strangers | 403: rest"
    ),
    "GET /api/members/communities/{community_id}/applications": TEAM_READ,
    "POST /api/members/communities/{community_id}/applications/{application_id}/approve": (
        "403: keys mod member muted | 404: rest"
    ),
    "POST /api/members/communities/{community_id}/applications/{application_id}/reject": TEAM,
    "GET /api/members/me/applications": ANY_USER_OR_KEY,
    "POST /api/members/communities/{community_id}/invites": TEAM,
    "GET /api/members/communities/{community_id}/invites": TEAM_READ,
    "POST /api/members/invites/{token}/redeem": "403: keys | 404: rest",
    "GET /api/members/communities/{community_id}/audit": TEAM_READ,
    "GET /api/members/audit": STAFF,
    "GET /api/members/me/notifications": ANY_USER_OR_KEY,
    "GET /api/members/me/notifications/unread-count": ANY_USER_OR_KEY,
    "POST /api/members/me/notifications/read-all": ANY_USER,
    "POST /api/members/me/notifications/{notification_id}/read": "403: keys | 404: rest",
    "GET /api/members/admin/notification-deliveries": STAFF,
    "POST /api/members/admin/notification-deliveries/{delivery_id}/retry": (
        "404: staff | 403: rest"
    ),
    "GET /api/members/me/profile": ANY_USER_OR_KEY,
    "PUT /api/members/me/profile": ANY_USER,
    "GET /api/members/me/export": ANY_USER_OR_KEY,
    "POST /api/members/pii/rotate": ADMIN,
    "POST /api/members/profiles/lookup": STAFF,
    "POST /api/members/internal/accounts/verify": "403: rest",
    "POST /api/members/internal/accounts/provision": "403: rest",
    "POST /api/members/accounts": ADMIN,
    "GET /api/members/accounts/{account_id}": ADMIN,
    "PATCH /api/members/accounts/{account_id}": ADMIN,
    "GET /api/members/communities/{community_id}/point-rules": MEMBERS_READ,
    "PUT /api/members/communities/{community_id}/point-rules": TEAM,
    "GET /api/members/communities/{community_id}/incentive-settings": MEMBERS_READ,
    "PUT /api/members/communities/{community_id}/incentive-settings": TEAM,
    "POST /api/members/communities/{community_id}/points/adjustments": TEAM,
    "GET /api/members/communities/{community_id}/members/{user_id}/points": TEAM_READ,
    "GET /api/members/communities/{community_id}/members/{user_id}/incentives": TEAM_READ,
    # Read after PUT incentive-settings switched leaderboards on (late).
    "GET /api/members/communities/{community_id}/leaderboard": (
        "ok: members staff | 404: strangers key | 403: rest"
    ),
    "POST /api/members/communities/{community_id}/badges": TEAM,
    "GET /api/members/communities/{community_id}/badges": MEMBERS_READ,
    "POST /api/members/communities/{community_id}/badges/{badge_id}/grants": TEAM,
    "POST /api/members/communities/{community_id}/perks": TEAM,
    "GET /api/members/communities/{community_id}/perks": MEMBERS_READ,
    "PATCH /api/members/communities/{community_id}/perks/{perk_id}": TEAM,
    "POST /api/members/communities/{community_id}/perks/{perk_id}/redemptions": (
        "ok: members staff | 403: keys | 404: rest"
    ),
    "GET /api/members/communities/{community_id}/tier-rules": TEAM_READ,
    "PUT /api/members/communities/{community_id}/tier-rules": TEAM,
    "POST /api/members/communities/{community_id}/tiers/recompute": TEAM,
    "GET /api/members/communities/{community_id}/members/{user_id}/tier": TEAM_READ,
    "GET /api/members/communities/{community_id}/care-settings": TEAM_READ,
    "PUT /api/members/communities/{community_id}/care-settings": TEAM,
    "GET /api/members/communities/{community_id}/care-journeys": TEAM_READ,
    "GET /api/members/communities/{community_id}/care-journeys/summary": TEAM_READ,
    # content
    "GET /api/content/admin/outbox": STAFF,
    "GET /api/content/admin/dead-letters": STAFF,
    "POST /api/content/admin/dead-letters/{dead_letter_id}/replay": "404: staff | 403: rest",
    "POST /api/content/communities/{community_id}/posts": VOICE,
    "GET /api/content/communities/{community_id}/posts": MEMBERS_READ,
    "GET /api/content/posts/{post_id}": MEMBERS_READ,
    "PATCH /api/content/posts/{post_id}": "ok: team staff member | 404: strangers | 403: rest",
    "GET /api/content/posts/{post_id}/revisions": (
        "ok: team staff member | 404: strangers key | 403: rest"
    ),
    "PUT /api/content/posts/{post_id}/pin": TEAM,
    "DELETE /api/content/posts/{post_id}/pin": TEAM,
    "GET /api/content/communities/{community_id}/pinned": MEMBERS_READ,
    "PUT /api/content/posts/{post_id}/featured": TEAM,
    "DELETE /api/content/posts/{post_id}/featured": TEAM,
    "POST /api/content/posts/{post_id}/shares": "404: strangers | 403: rest",
    "POST /api/content/posts/{post_id}/attachments": "422: users | 403: keys",
    "GET /api/content/posts/{post_id}/attachments": MEMBERS_READ,
    "GET /api/content/attachments/{attachment_id}": "403: key0 | 404: rest",
    "GET /api/content/communities/{community_id}/review-policy": MODS_READ,
    "PUT /api/content/communities/{community_id}/review-policy": TEAM,
    "GET /api/content/communities/{community_id}/review-queue": MODS_READ,
    "GET /api/content/posts/{post_id}/review/history": (
        "ok: mods staff member | 403: key0 | 404: rest"
    ),
    "POST /api/content/communities/{community_id}/columns": ANY_USER,
    "GET /api/content/communities/{community_id}/columns": MEMBERS_READ,
    "PATCH /api/content/columns/{column_id}": MODS_404,
    "GET /api/content/communities/{community_id}/tags": MEMBERS_READ,
    "GET /api/content/communities/{community_id}/calendar": MODS_READ,
    "GET /api/content/communities/{community_id}/calendar.ics": MODS_READ,
    "PUT /api/content/posts/{post_id}/slot": MODS_404,
    "DELETE /api/content/posts/{post_id}/slot": "403: keys member muted | 404: rest",
    "POST /api/content/posts/{post_id}/comments": VOICE,
    "GET /api/content/posts/{post_id}/comments": MEMBERS_READ,
    "PATCH /api/content/comments/{comment_id}": "ok: member | 404: strangers | 403: rest",
    "PUT /api/content/posts/{post_id}/reactions": VOICE,
    "GET /api/content/posts/{post_id}/reactions": MEMBERS_READ,
    "DELETE /api/content/posts/{post_id}/reactions/{kind}": VOICE,
    "GET /api/content/search": ANY_USER_OR_KEY,
    "POST /api/content/communities/{community_id}/polls": VOICE,
    "GET /api/content/communities/{community_id}/polls": MEMBERS_READ,
    "GET /api/content/polls/{poll_id}": MEMBERS_READ,
    "PUT /api/content/polls/{poll_id}/vote": VOICE,
    "GET /api/content/communities/{community_id}/hot": MEMBERS_READ,
    "GET /api/content/communities/{community_id}/unanswered": MEMBERS_READ,
    "GET /api/content/communities/{community_id}/flagged": MODS_READ,
    "POST /api/content/communities/{community_id}/surveys": ANY_USER,
    "GET /api/content/communities/{community_id}/surveys": MEMBERS_READ,
    "GET /api/content/surveys/{survey_id}": MEMBERS_READ,
    "PUT /api/content/surveys/{survey_id}/responses/me": VOICE,
    "GET /api/content/surveys/{survey_id}/responses/me": "403: key0 | 404: rest",
    "GET /api/content/surveys/{survey_id}/results": MEMBERS_READ,
    "GET /api/content/surveys/{survey_id}/export.csv": TEAM_READ,
    "POST /api/content/communities/{community_id}/suggestions": VOICE,
    "GET /api/content/communities/{community_id}/suggestions": MEMBERS_READ,
    "GET /api/content/suggestions/{suggestion_id}": MEMBERS_READ,
    "PUT /api/content/suggestions/{suggestion_id}/votes/me": VOICE,
    "DELETE /api/content/suggestions/{suggestion_id}/votes/me": VOICE,
    "POST /api/content/suggestions/{suggestion_id}/status": MODS_404,
    "POST /api/content/suggestions/{suggestion_id}/replies": MODS_404,
    "GET /api/content/suggestions/{suggestion_id}/replies": MEMBERS_READ,
    # events
    "GET /api/events/admin/outbox": STAFF,
    "GET /api/events/admin/dead-letters": STAFF,
    "POST /api/events/admin/dead-letters/{dead_letter_id}/replay": "404: staff | 403: rest",
    "POST /api/events/activities": TEAM_403,
    "GET /api/events/activities": ANY_USER_OR_KEY,
    "GET /api/events/activities/{activity_id}": MEMBERS_403,
    "PATCH /api/events/activities/{activity_id}": TEAM_403,
    "POST /api/events/activities/{activity_id}/registrations": VOICE_403,
    "GET /api/events/activities/{activity_id}/registrations": TEAM_403,
    "GET /api/events/communities/{community_id}/activity-settings": MEMBERS_403,
    "PUT /api/events/communities/{community_id}/activity-settings": TEAM_403,
    "GET /api/events/activities/{activity_id}/registrations/me/check-in-code": MEMBERS_403,
    "GET /api/events/activities/{activity_id}/registrations/me/check-in-code/qr.png": MEMBERS_403,
    "GET /api/events/activities/{activity_id}/registrations/me/check-in-code/qr.svg": MEMBERS_403,
    "POST /api/events/activities/{activity_id}/check-ins": TEAM_403,
    "GET /api/events/activities/{activity_id}/check-ins": TEAM_403,
    "GET /api/events/activities/{activity_id}/check-in-policy": MEMBERS_403,
    "PUT /api/events/activities/{activity_id}/check-in-policy": TEAM_403,
    "POST /api/events/activities/{activity_id}/draws": TEAM_403,
    "GET /api/events/activities/{activity_id}/draws": MEMBERS_403,
    "GET /api/events/draws/{draw_id}": MEMBERS_403,
    "PATCH /api/events/draws/{draw_id}": TEAM_403,
    "GET /api/events/draws/{draw_id}/proof": MEMBERS_403,
    "POST /api/events/activities/{activity_id}/questions": VOICE_403,
    "GET /api/events/activities/{activity_id}/questions": MEMBERS_403,
    "PUT /api/events/questions/{question_id}/vote": VOICE_403,
    "DELETE /api/events/questions/{question_id}/vote": VOICE_403,
    "PATCH /api/events/questions/{question_id}": TEAM_403,
    "GET /api/events/activities/{activity_id}/qa-policy": MEMBERS_403,
    "PUT /api/events/activities/{activity_id}/qa-policy": TEAM_403,
    "PUT /api/events/activities/{activity_id}/feedback/me": ANY_USER,
    "GET /api/events/activities/{activity_id}/feedback/me": "403: key0 | 404: rest",
    "GET /api/events/activities/{activity_id}/feedback": TEAM_403,
    "GET /api/events/activities/{activity_id}/summary": TEAM_403,
    "GET /api/events/activities/{activity_id}/summary.csv": TEAM_403,
    "GET /api/events/activities/{activity_id}/attendees.csv": TEAM_403,
    "GET /api/events/activities/{activity_id}/calendar.ics": MEMBERS_403,
    "GET /api/events/communities/{community_id}/activities.ics": MEMBERS_403,
    "GET /api/events/calendar/tokens": ANY_USER_OR_KEY,
    "POST /api/events/calendar/tokens": ANY_USER,
    # The token in the path is the credential (calendar apps send no header): a wrong one 404s.
    "GET /api/events/calendar/feeds/{token}.ics": "403: key0 | 404: rest anon",
    "POST /api/events/series": TEAM_403,
    "GET /api/events/series/{series_id}": MEMBERS_403,
    # moderation
    "GET /api/moderation/admin/outbox": STAFF,
    "GET /api/moderation/admin/dead-letters": STAFF,
    "POST /api/moderation/admin/dead-letters/{dead_letter_id}/replay": "404: staff | 403: rest",
    "GET /api/moderation/screenings": STAFF,
    "GET /api/moderation/screenings/{screening_id}": "404: staff | 403: rest",
    "GET /api/moderation/communities/{community_id}/rules": MODS,
    "PUT /api/moderation/communities/{community_id}/rules": MODS,
    "GET /api/moderation/communities/{community_id}/rules/versions": MODS,
    "POST /api/moderation/communities/{community_id}/rules/dry-run": MODS,
    "GET /api/moderation/communities/{community_id}/sanctions/ladder": MODS,
    "PATCH /api/moderation/communities/{community_id}/sanctions/ladder": MODS,
    "POST /api/moderation/communities/{community_id}/sanctions": MODS,
    "GET /api/moderation/communities/{community_id}/sanctions": MODS,
    "GET /api/moderation/communities/{community_id}/members/{user_id}/standing": MODS,
    "GET /api/moderation/sanctions/{sanction_id}": MODS,
    "POST /api/moderation/communities/{community_id}/reports": MEMBERS_403,
    "GET /api/moderation/me/reports": ANY_USER,
    "GET /api/moderation/communities/{community_id}/reports/policy": MODS,
    "PATCH /api/moderation/communities/{community_id}/reports/policy": MODS,
    "GET /api/moderation/communities/{community_id}/queue": MODS,
    "GET /api/moderation/queue/{entry_id}": MODS,
    "POST /api/moderation/sanctions/{sanction_id}/appeals": "403: rest",
    "GET /api/moderation/appeals/{appeal_id}": MODS,
    "POST /api/moderation/appeals/{appeal_id}/messages": MODS,
    "GET /api/moderation/audit/verify": STAFF,
    "GET /api/moderation/audit/records": STAFF,
    "GET /api/moderation/communities/{community_id}/audit": MODS,
    "GET /api/moderation/communities/{community_id}/evidence": MODS,
    "GET /api/moderation/communities/{community_id}/evidence/retention": MODS,
    "PUT /api/moderation/communities/{community_id}/evidence/retention": MODS,
    "GET /api/moderation/communities/{community_id}/legal-holds": MODS,
    "POST /api/moderation/communities/{community_id}/legal-holds": MODS,
    "POST /api/moderation/communities/{community_id}/cases/{item_type}/{item_id}/export": MODS,
    "GET /api/moderation/communities/{community_id}/sentiment": MODS,
    "GET /api/moderation/communities/{community_id}/sentiment/alerts": MODS,
    "POST /api/moderation/communities/{community_id}/sentiment/alerts/{alert_id}/acknowledge": (
        "404: mods staff | 403: rest"
    ),
    "POST /api/moderation/communities/{community_id}/sentiment/alerts/{alert_id}/resolve": (
        "404: mods staff | 403: rest"
    ),
    # metrics
    "GET /api/metrics/admin/outbox": STAFF,
    "GET /api/metrics/admin/dead-letters": STAFF,
    "POST /api/metrics/admin/dead-letters/{dead_letter_id}/replay": "404: staff | 403: rest",
    "GET /api/metrics/communities/{community_id}/counts": STAFF,
    "GET /api/metrics/catalogue": ANY_USER_OR_KEY,
    "GET /api/metrics/communities/{community_id}/policy": TEAM_OR_KEY,
    "PATCH /api/metrics/communities/{community_id}/policy": TEAM,
    "GET /api/metrics/communities/{community_id}/activity/daily": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/activity/active": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/retention": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/win-back": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/leaderboard": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/activity/members": TEAM_OR_KEY,
    "POST /api/metrics/conversions": "ok: staff key | 403: rest",
    "GET /api/metrics/communities/{community_id}/conversions/rates": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/funnel": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/measures/content": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/measures/activities": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/measures/moderation": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/goals/progress": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/health": TEAM_OR_KEY,
    "POST /api/metrics/communities/{community_id}/reports": TEAM,
    "GET /api/metrics/communities/{community_id}/reports": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/reports/{report_id}": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/reports/{report_id}/{fmt}": TEAM_OR_KEY,
    "GET /api/metrics/communities/{community_id}/analysis": TEAM_OR_KEY,
    # content
    # A is published: its reviewers get the 409; everyone else their refusal first (the state
    # was answered before the permission, to strangers too: fixed in content's review service).
    "POST /api/content/posts/{post_id}/review/claim": (
        "409: staff mods | 403: member | 404: strangers | 403: rest"
    ),
    "DELETE /api/content/posts/{post_id}/review/claim": "403: keys | 404: rest",
    "POST /api/content/posts/{post_id}/review/decision": (
        "409: staff mods | 403: member | 404: strangers | 403: rest"
    ),
    "POST /api/content/communities/{community_id}/review/bulk": MODS_404,
    "POST /api/content/posts/{post_id}/resubmit": "ok: member | 403: keys | 404: rest",
    "PUT /api/content/posts/{post_id}/comments-lock": TEAM,
    "DELETE /api/content/posts/{post_id}/comments-lock": TEAM,
    "POST /api/content/polls/{poll_id}/close": MODS_404,
    "POST /api/content/surveys/{survey_id}/close": TEAM,
    # The author, the team and moderators (moderators may not delete posts, only comments).
    "DELETE /api/content/comments/{comment_id}": (
        "ok: staff mods member | 403: muted keys | 404: strangers"
    ),
    "DELETE /api/content/columns/{column_id}": "ok: staff mods | 404: strangers | 403: rest",
    "DELETE /api/content/posts/{post_id}": (
        "ok: staff team member | 403: mod muted keys | 404: strangers"
    ),
    # events
    "PUT /api/events/activities/{activity_id}/capacity": TEAM_403,
    "POST /api/events/activities/{activity_id}/registrations/{registration_id}/approve": TEAM_403,
    "POST /api/events/activities/{activity_id}/registrations/{registration_id}/reject": TEAM_403,
    "DELETE /api/events/activities/{activity_id}/registrations/me": (
        "ok: mods staff member | 403: keys | 404: rest"
    ),
    "POST /api/events/draws/{draw_id}/commit": TEAM_403,
    "POST /api/events/draws/{draw_id}/reveal": TEAM_403,
    "POST /api/events/draws/{draw_id}/redraws": TEAM_403,
    "POST /api/events/draws/{draw_id}/complete": TEAM_403,
    "PATCH /api/events/series/{series_id}/occurrences/{activity_id}": "403: keys | 404: rest",
    "DELETE /api/events/calendar/tokens/{token_id}": "ok: member | 403: keys | 404: rest",
    "POST /api/events/activities/{activity_id}/transitions": TEAM_403,
    # moderation
    "POST /api/moderation/queue/{entry_id}/claim": MODS,
    "POST /api/moderation/queue/{entry_id}/assign": MODS,
    "POST /api/moderation/queue/{entry_id}/decision": MODS,
    "POST /api/moderation/communities/{community_id}/queue/decisions": MODS,
    "POST /api/moderation/queue/{entry_id}/appeals": "403: rest",
    "POST /api/moderation/appeals/{appeal_id}/decision": "ok: staff cadmin mod | 403: rest",
    "POST /api/moderation/sanctions/{sanction_id}/lift": MODS,
    "POST /api/moderation/communities/{community_id}/legal-holds/{hold_id}/release": MODS,
    # gateway
    "DELETE /auth/api-keys/{key_id}": ADMIN,
    "DELETE /admin/webhooks/{subscription_id}": "404: padmin | 403: rest",
    # members
    "DELETE /api/members/communities/{community_id}/goals/{goal_id}": TEAM,
    "DELETE /api/members/communities/{community_id}/invites/{invite_id}": TEAM,
    "POST /api/members/communities/{community_id}/badges/{badge_id}/grants/{user_id}/revoke": TEAM,
    "PUT /api/members/communities/{community_id}/members/{user_id}/role": (
        "403: keys mod member muted | 404: rest"
    ),
    "POST /api/members/communities/{community_id}/members/{user_id}/mute": (
        "403: keys member muted | 404: rest"
    ),
    "POST /api/members/communities/{community_id}/members/{user_id}/cleanup-notice": (
        "403: keys mod member muted | 404: rest"
    ),
    "DELETE /api/members/communities/{community_id}/members/{user_id}/cleanup-notice": (
        "403: keys mod member muted | 404: rest"
    ),
    "POST /api/members/communities/{community_id}/members/{user_id}/removal": (
        "403: keys member muted | 404: rest"
    ),
    "POST /api/members/communities/{community_id}/members/{user_id}/restore": TEAM,
    "POST /api/members/communities/{community_id}/members/{user_id}/ban": TEAM,
    "POST /api/members/cleanup/run": STAFF,
    "POST /api/members/handovers": STAFF,
    "POST /api/members/communities/{community_id}/ownership": (
        "ok: staff owner | 404: strangers | 403: rest"
    ),
    "POST /api/members/communities/{community_id}/archive": (
        "ok: staff owner | 404: strangers | 403: rest"
    ),
    "POST /api/members/communities/{community_id}/restore": (
        "ok: staff owner | 404: strangers | 403: rest"
    ),
    "DELETE /api/members/communities/{community_id}/members/me": (
        "ok: members staff | 403: keys | 404: rest"
    ),
    "DELETE /api/members/me": ANY_USER,
}

# Operations whose write changes what other cells need: they run after all the others, in this
# order (the community's end and the callers' own erasure last), refused callers first.
M, C, E, MO = "/api/members", "/api/content", "/api/events", "/api/moderation"
MC = M + "/communities/{community_id}"
DESTRUCTIVE: list[str] = [
    # Not destructive: reads after the writes that set them up ran with the others.
    f"GET {MO}/communities/{{community_id}}/rules",
    f"GET {MC}/leaderboard",
    f"POST {C}/posts/{{post_id}}/review/claim",
    f"DELETE {C}/posts/{{post_id}}/review/claim",
    f"POST {C}/posts/{{post_id}}/review/decision",
    f"POST {C}/communities/{{community_id}}/review/bulk",
    f"POST {C}/posts/{{post_id}}/resubmit",
    f"PUT {C}/posts/{{post_id}}/comments-lock",
    f"DELETE {C}/posts/{{post_id}}/comments-lock",
    f"POST {C}/polls/{{poll_id}}/close",
    f"POST {C}/surveys/{{survey_id}}/close",
    f"DELETE {C}/comments/{{comment_id}}",
    f"DELETE {C}/columns/{{column_id}}",
    f"DELETE {C}/posts/{{post_id}}",
    f"PUT {E}/activities/{{activity_id}}/capacity",
    f"POST {E}/activities/{{activity_id}}/registrations/{{registration_id}}/approve",
    f"POST {E}/activities/{{activity_id}}/registrations/{{registration_id}}/reject",
    f"DELETE {E}/activities/{{activity_id}}/registrations/me",
    f"POST {E}/draws/{{draw_id}}/commit",
    f"POST {E}/draws/{{draw_id}}/reveal",
    f"POST {E}/draws/{{draw_id}}/redraws",
    f"POST {E}/draws/{{draw_id}}/complete",
    f"PATCH {E}/series/{{series_id}}/occurrences/{{activity_id}}",
    f"DELETE {E}/calendar/tokens/{{token_id}}",
    f"POST {E}/activities/{{activity_id}}/transitions",
    f"POST {MO}/queue/{{entry_id}}/claim",
    f"POST {MO}/queue/{{entry_id}}/assign",
    f"POST {MO}/queue/{{entry_id}}/decision",
    f"POST {MO}/communities/{{community_id}}/queue/decisions",
    f"POST {MO}/queue/{{entry_id}}/appeals",
    f"POST {MO}/appeals/{{appeal_id}}/decision",
    f"POST {MO}/sanctions/{{sanction_id}}/lift",
    f"POST {MO}/communities/{{community_id}}/legal-holds/{{hold_id}}/release",
    "DELETE /auth/api-keys/{key_id}",
    "DELETE /admin/webhooks/{subscription_id}",
    f"DELETE {MC}/goals/{{goal_id}}",
    f"DELETE {MC}/invites/{{invite_id}}",
    f"POST {MC}/badges/{{badge_id}}/grants/{{user_id}}/revoke",
    f"PUT {MC}/members/{{user_id}}/role",
    f"POST {MC}/members/{{user_id}}/mute",
    f"POST {MC}/members/{{user_id}}/cleanup-notice",
    f"DELETE {MC}/members/{{user_id}}/cleanup-notice",
    f"POST {MC}/members/{{user_id}}/removal",
    f"POST {MC}/members/{{user_id}}/restore",
    f"POST {MC}/members/{{user_id}}/ban",
    f"POST {M}/cleanup/run",
    f"POST {M}/handovers",
    f"POST {MC}/ownership",
    f"POST {MC}/archive",
    f"POST {MC}/restore",
    f"DELETE {MC}/members/me",
    f"DELETE {M}/me",
]


# One-shot writes: a fresh object before each allowed caller (ids to substitute), or an undo
# after, so every allowed caller meets the same state the first one did.
async def _fresh_post(gw: httpx.AsyncClient, w: World) -> dict[str, str]:
    body = {"title": "Fresh", "body": "to delete", "format": "text"}
    a = w.ids["community_id"]
    r = await gw.post(f"{C}/communities/{a}/posts", json=body, headers=w.headers["member"])
    return {"post_id": (await _ok(r, 201))["id"]}


async def _fresh_comment(gw: httpx.AsyncClient, w: World) -> dict[str, str]:
    r = await gw.post(
        f"{C}/posts/{w.ids['post_id']}/comments", json={"body": "x"}, headers=w.headers["member"]
    )
    return {"comment_id": (await _ok(r, 201))["id"]}


async def _fresh_column(gw: httpx.AsyncClient, w: World) -> dict[str, str]:
    a = w.ids["community_id"]
    body = {"name": f"c{uuid.uuid4().hex[:6]}", "cadence": "weekly", "weekday": 0, "hour": 9}
    r = await gw.post(f"{C}/communities/{a}/columns", json=body, headers=w.headers["owner"])
    return {"column_id": (await _ok(r, 201))["id"]}


async def _fresh_goal(gw: httpx.AsyncClient, w: World) -> dict[str, str]:
    body = {"metric": "joins", "target": 5, "deadline": str(date.today() + timedelta(days=60))}
    a = w.ids["community_id"]
    r = await gw.post(f"{M}/communities/{a}/goals", json=body, headers=w.headers["owner"])
    return {"goal_id": (await _ok(r, 201))["id"]}


async def _fresh_invite(gw: httpx.AsyncClient, w: World) -> dict[str, str]:
    a = w.ids["community_id"]
    r = await gw.post(f"{M}/communities/{a}/invites", json={}, headers=w.headers["owner"])
    return {"invite_id": (await _ok(r, 201))["id"]}


async def _restore_target(gw: httpx.AsyncClient, w: World) -> None:
    a, target = w.ids["community_id"], w.users["target"]
    r = await gw.post(
        f"{M}/communities/{a}/members/{target}/restore",
        json={"reason": "matrix"},
        headers=w.headers["owner"],
    )
    await _ok(r, 200)


async def _restore_community(gw: httpx.AsyncClient, w: World) -> None:
    a = w.ids["community_id"]
    await _ok(await gw.post(f"{M}/communities/{a}/restore", headers=w.headers["padmin"]), 200)


async def _archive_community(gw: httpx.AsyncClient, w: World) -> dict[str, str]:
    a = w.ids["community_id"]
    await _ok(await gw.post(f"{M}/communities/{a}/archive", headers=w.headers["padmin"]), 200)
    return {}


ONE_SHOT: dict[str, tuple[Any, Any]] = {
    f"DELETE {C}/posts/{{post_id}}": (_fresh_post, None),
    f"DELETE {C}/comments/{{comment_id}}": (_fresh_comment, None),
    f"DELETE {C}/columns/{{column_id}}": (_fresh_column, None),
    f"DELETE {MC}/goals/{{goal_id}}": (_fresh_goal, None),
    f"DELETE {MC}/invites/{{invite_id}}": (_fresh_invite, None),
    f"POST {MC}/members/{{user_id}}/removal": (None, _restore_target),
    f"POST {MC}/members/{{user_id}}/ban": (None, _restore_target),
    f"POST {MC}/archive": (None, _restore_community),
    f"POST {MC}/restore": (_archive_community, None),
}

# Bodies where the schema's minimal example is not a real request (a function of the world).
BODIES: dict[str, Any] = {
    # Transfers to the owner themself: authorization is decided, the world stays as it is.
    f"POST {MC}/ownership": lambda w: {"new_owner_id": w.users["owner"]},
    f"POST {M}/handovers": lambda w: {
        "from_user_id": w.users["target"],
        "to_user_id": w.users["target"],
        "reason": "matrix",
    },
    f"PUT {MC}/members/{{user_id}}/role": {"role": "member"},
    f"PUT {MC}/incentive-settings": {"leaderboards_enabled": True},
    f"POST {MC}/members/{{user_id}}/mute": lambda w: {
        "muted_until": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
        "reason": "matrix",
    },
    f"POST {C}/communities/{{community_id}}/posts": {"title": "t", "body": "b", "format": "text"},
    f"POST {C}/communities/{{community_id}}/polls": {"question": "q", "options": ["a", "b"]},
    f"PUT {C}/polls/{{poll_id}}/vote": lambda w: {"option_ids": [w.ids["option_id"]]},
    f"PUT {C}/posts/{{post_id}}/reactions": {"kind": "like"},
    f"POST {E}/activities": lambda w: w.spare["plan"],
    f"POST {E}/series": lambda w: {"activity": w.spare["plan"], "rrule": "FREQ=WEEKLY;COUNT=2"},
    f"POST {E}/activities/{{activity_id}}/transitions": {"to": "cancelled"},
    f"POST {E}/activities/{{activity_id}}/check-ins": lambda w: {"user_id": w.users["member"]},
    f"POST {E}/activities/{{activity_id}}/draws": {
        "title": "D",
        "prizes": [{"name": "P", "count": 1}],
    },
    f"POST {MO}/communities/{{community_id}}/reports": lambda w: {
        "item_type": "member",
        "item_id": w.users["target"],
        "reason": "spam",
    },
    f"POST {MO}/communities/{{community_id}}/sanctions": lambda w: {
        "user_id": w.users["target"],
        "level": "warning",
        "reason": "r",
    },
    f"POST {MO}/queue/{{entry_id}}/assign": lambda w: {"assignee_id": w.users["mod"]},
    f"POST {MO}/queue/{{entry_id}}/decision": {"decision": "dismiss"},
    f"POST {MO}/communities/{{community_id}}/queue/decisions": lambda w: {
        "entry_ids": [w.ids["entry_id"]],
        "decision": "dismiss",
    },
    f"POST {MO}/appeals/{{appeal_id}}/decision": {"outcome": "lifted", "reason": "r"},
    "POST /admin/webhooks": {"url": "https://example.com/hook", "event_types": ["hearth.*"]},
}


# --- The world -----------------------------------------------------------------------------------
@dataclass
class World:
    """The seeded callers (headers per role) and community A's objects (path parameters)."""

    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # role → subject
    ids: dict[str, str] = field(default_factory=dict)  # path parameter name → value
    spare: dict[str, str] = field(default_factory=dict)


async def _ok(r: httpx.Response, *codes: int) -> dict[str, Any]:
    assert r.status_code in (codes or (200, 201)), (r.request.method, r.request.url, r.text)
    return r.json() if r.content else {}


async def _login(gw: httpx.AsyncClient, login: str, password: str) -> dict[str, str]:
    r = await gw.post("/auth/token", json={"username": login, "password": password})
    body = await _ok(r, 200)
    return {"authorization": f"Bearer {body['access_token']}"}


async def _build_world(gw: httpx.AsyncClient) -> World:
    w = World()
    root = await _login(gw, "admin", "hearth-admin")
    tag = uuid.uuid4().hex[:6]
    accounts = {
        "padmin": ["admin"],
        "operator": ["operator"],
        "owner": ["member"],
        "cadmin": ["member"],
        "mod": ["member"],
        "member": ["member"],
        "muted": ["member"],
        "outsider": ["member"],
        "b_owner": ["member"],
        "target": ["member"],  # the member moderation routes act on
        "founder": ["operator"],  # founds A and B
    }

    async def account(role: str, roles: list[str]) -> None:
        login, password = f"am-{role}-{tag}", f"pw-{role}-{tag}-long"
        r = await gw.post(
            "/api/members/accounts",
            json={"login": login, "password": password, "name": role, "roles": roles},
            headers=root,
        )
        w.users[role] = (await _ok(r, 201))["id"]
        w.headers[role] = await _login(gw, login, password)

    for role, roles in accounts.items():  # one at a time: password hashing is slow on purpose
        await account(role, roles)
    w.headers["anon"] = {}
    owner = w.headers["owner"]

    # Communities are founded by staff (a founder not among the callers, who stays an admin of
    # both) and handed to their owners.
    founder = w.headers.pop("founder")

    async def community(name: str, owner_role: str, visibility: str) -> str:
        r = await gw.post(
            "/api/members/communities",
            json={"name": f"{name} {tag}", "kind": "customer", "visibility": visibility},
            headers=founder,
        )
        cid = (await _ok(r, 201))["id"]
        r = await gw.post(
            f"/api/members/communities/{cid}/ownership",
            json={"new_owner_id": w.users[owner_role], "reason": "matrix"},
            headers=founder,
        )
        await _ok(r, 200)
        return str(cid)

    a = await community("A", "owner", "private")
    w.ids["community_b"] = await community("B", "b_owner", "public")
    w.ids["community_id"] = a
    # A is private: its members come in through an invite link.
    r = await gw.post(f"/api/members/communities/{a}/invites", json={}, headers=owner)
    invite = (await _ok(r, 201))["token"]
    for role in ("cadmin", "mod", "member", "muted", "target"):
        r = await gw.post(f"/api/members/invites/{invite}/redeem", headers=w.headers[role])
        await _ok(r, 200, 201)
    for role, community_role in (("cadmin", "admin"), ("mod", "moderator")):
        r = await gw.put(
            f"/api/members/communities/{a}/members/{w.users[role]}/role",
            json={"role": community_role},
            headers=owner,
        )
        await _ok(r, 200)
    until = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    r = await gw.post(
        f"/api/members/communities/{a}/members/{w.users['muted']}/mute",
        json={"muted_until": until, "reason": "matrix"},
        headers=owner,
    )
    await _ok(r, 200)
    w.ids["user_id"] = w.users["target"]
    w.ids["account_id"] = w.users["target"]

    # API keys: one with the scopes metrics asks for, one without, one spare to revoke.
    async def key(scopes: list[str]) -> tuple[str, str]:
        r = await gw.post(
            "/auth/api-keys", json={"name": f"am-{tag}", "scopes": scopes}, headers=root
        )
        body = await _ok(r, 201)
        return body["id"], body["key"]

    _, plain = await key(sorted(KEY_SCOPES))
    w.headers["key"] = {"authorization": f"Bearer {plain}"}
    _, plain = await key(["nothing:granted"])
    w.headers["key0"] = {"authorization": f"Bearer {plain}"}
    w.ids["key_id"], _ = await key(["nothing:granted"])
    await _seed_objects(gw, w)
    return w


async def _seed_objects(gw: httpx.AsyncClient, w: World) -> None:
    """Community A's objects, made by the callers who would make them, through the gateway."""
    a, h, ids = w.ids["community_id"], w.headers, w.ids
    owner, member = h["owner"], h["member"]
    soon = datetime.now(UTC) + timedelta(days=3)

    async def post(path: str, body: Any, who: dict[str, str], *codes: int) -> dict[str, Any]:
        return await _ok(await gw.post(path, json=body, headers=who), *codes)

    async def eventually_post(path: str, body: Any, who: dict[str, str]) -> dict[str, Any]:
        # Contexts authorize from read models fed by members' events: retry until they know.
        async def attempt() -> dict[str, Any] | None:
            r = await gw.post(path, json=body, headers=who)
            if r.status_code in (403, 404):
                return None
            return await _ok(r)

        return await eventually(attempt, timeout=30, interval=0.3)

    m = "/api/members/communities/" + a
    ids["goal_id"] = (
        await post(
            f"{m}/goals",
            {"metric": "joins", "target": 10, "deadline": str(date.today() + timedelta(90))},
            owner,
        )
    )["id"]
    ids["badge_id"] = (await post(f"{m}/badges", {"name": "Helper"}, owner))["id"]
    ids["perk_id"] = (await post(f"{m}/perks", {"name": "Mug", "cost": 1}, owner))["id"]
    ids["invite_id"] = (await post(f"{m}/invites", {}, owner))["id"]

    c = "/api/content/communities/" + a
    body = {"title": "Welcome", "body": "Glad to be here", "format": "text"}
    post_ = await eventually_post(f"{c}/posts", body, member)
    ids["post_id"] = post_["id"]

    async def published() -> bool | None:
        r = await gw.get(f"/api/content/posts/{ids['post_id']}", headers=member)
        return True if r.status_code == 200 and r.json()["status"] == "published" else None

    await eventually(published, timeout=30, interval=0.3)
    ids["comment_id"] = (
        await post(f"/api/content/posts/{ids['post_id']}/comments", {"body": "Hi"}, member)
    )["id"]
    poll = await eventually_post(f"{c}/polls", {"question": "q", "options": ["a", "b"]}, owner)
    ids["poll_id"], ids["option_id"] = poll["id"], poll["options"][0]["id"]
    survey = {
        "title": "t",
        "questions": [{"prompt": "p", "kind": "scale_1_5"}],
        "closes_at": soon.isoformat(),
    }
    ids["survey_id"] = (await post(f"{c}/surveys", survey, owner))["id"]
    ids["suggestion_id"] = (await post(f"{c}/suggestions", {"title": "idea"}, member))["id"]
    column = {"name": "weekly", "cadence": "weekly", "weekday": 0, "hour": 9}
    ids["column_id"] = (await post(f"{c}/columns", column, owner))["id"]
    ids["kind"] = "like"

    plan = {
        "community_id": a,
        "title": "Meetup",
        "kind": "meetup",
        "starts_at": soon.isoformat(),
        "ends_at": (soon + timedelta(hours=1)).isoformat(),
        "capacity": 20,
    }
    w.spare["plan"] = plan  # type: ignore[assignment]
    ids["activity_id"] = (await eventually_post("/api/events/activities", plan, owner))["id"]
    act = f"/api/events/activities/{ids['activity_id']}"
    ids["registration_id"] = (await eventually_post(f"{act}/registrations", None, member))["id"]
    await eventually_post(f"{act}/registrations", None, h["target"])
    ids["question_id"] = (await post(f"{act}/questions", {"text": "Q?"}, member))["id"]
    draw = {"title": "D", "prizes": [{"name": "P", "count": 1}]}
    ids["draw_id"] = (await post(f"{act}/draws", draw, owner))["id"]
    series = await post(
        "/api/events/series", {"activity": plan, "rrule": "FREQ=WEEKLY;COUNT=2"}, owner
    )
    ids["series_id"] = series["id"]
    ids["token_id"] = (await post("/api/events/calendar/tokens", None, member))["id"]

    mod = "/api/moderation/communities/" + a
    report = {"item_type": "member", "item_id": w.users["target"], "reason": "spam"}
    ids["entry_id"] = (await eventually_post(f"{mod}/reports", report, member))["entry_id"]
    sanction = {"user_id": w.users["target"], "level": "warning", "reason": "r"}
    sanctions: Any = await eventually_post(f"{mod}/sanctions", sanction, owner)  # a list
    ids["sanction_id"] = sanctions[0]["id"]
    appeal = {"text": "not me"}
    ids["appeal_id"] = (
        await post(f"/api/moderation/sanctions/{ids['sanction_id']}/appeals", appeal, h["target"])
    )["id"]
    hold = {"reason": "court order"}
    ids["hold_id"] = (await post(f"{mod}/legal-holds", hold, owner))["id"]
    ids["item_type"], ids["item_id"] = "post", ids["post_id"]

    ids["report_id"] = (
        await eventually_post(f"/api/metrics/communities/{a}/reports", {"period": "week"}, owner)
    )["id"]
    ids["fmt"] = "json"


# --- Request construction ------------------------------------------------------------------------
PARAM = re.compile(r"{([^}]+)}")


def _resolve(schema: dict[str, Any], doc: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def example(
    schema: dict[str, Any], doc: dict[str, Any], depth: int = 0, names: dict[str, str] | None = None
) -> Any:
    """A minimal valid value of a JSON schema: required fields only, smallest allowed values;
    a property named like a world object (`user_id`, `post_id`…) gets that object."""
    names = names or {}
    schema = _resolve(schema, doc)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema and depth > 0:
        return schema["default"]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [o for o in schema[key] if _resolve(o, doc).get("type") != "null"]
            return example(options[0] if options else schema[key][0], doc, depth + 1, names)
    kind = schema.get("type", "object")
    if kind == "string":
        fmt = schema.get("format")
        if fmt == "date-time":
            return (datetime.now(UTC) + timedelta(days=2)).isoformat()
        if fmt == "date":
            return (date.today() + timedelta(days=30)).isoformat()
        if fmt == "uuid":
            return str(uuid.uuid4())
        if fmt in ("uri", "url"):
            return "https://example.com/x"
        return "x" * max(1, schema.get("minLength", 1))
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0) + 1)
        return low
    if kind == "boolean":
        return False
    if kind == "array":
        item = example(schema.get("items", {}), doc, depth + 1, names)
        return [item] * schema.get("minItems", 0)
    if kind == "null":
        return None
    props = schema.get("properties", {})
    return {
        k: names[k] if k in names else example(props[k], doc, depth + 1, names)
        for k in schema.get("required", [])
        if k in props
    }


@dataclass(frozen=True)
class Operation:
    """One documented operation and how to call it in this world."""

    key: str  # "METHOD /path" as in the document
    method: str
    path: str
    body: Any


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation object) for every operation of the merged document."""
    out = []
    for path, item in doc["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete") and isinstance(op, dict):
                out.append((method.upper(), path, op))
    return out


def _bare(path: str) -> str:
    """The service-local path (the table and the open list are keyed without /api/<ctx>)."""
    return re.sub(r"^/api/[a-z]+", "", path)


def build(doc: dict[str, Any], w: World) -> list[Operation]:
    """Every operation filled with community A's objects."""
    built = []
    for method, path, op in operations(doc):
        if _bare(path) in OPEN_PATHS or path in OPEN_PATHS | CREDENTIAL_PATHS:
            continue
        key = f"{method} {path}"
        concrete = PARAM.sub(lambda m: w.ids.get(m.group(1), str(uuid.uuid4())), path)
        body: Any = None
        if key in BODIES:
            body = BODIES[key](w) if callable(BODIES[key]) else BODIES[key]
        else:
            content = op.get("requestBody", {}).get("content", {})
            if "application/json" in content:
                names = {**w.ids, "user_id": w.users["target"], "assignee_id": w.users["mod"]}
                body = example(content["application/json"]["schema"], doc, names=names)
        built.append(Operation(key, method, concrete, body))
    return built


# --- The run -------------------------------------------------------------------------------------
@dataclass
class Cell:
    """One request's outcome."""

    op: str
    role: str
    status: int
    content_type: str
    text: str


async def _call(gw: httpx.AsyncClient, op: Operation, role: str, w: World, **ids: str) -> Cell:
    path = op.path
    for name, value in ids.items():  # a fresh object for this one cell
        path = path.replace(w.ids[name], value)
    r = await gw.request(op.method, path, json=op.body, headers=w.headers[role])
    return Cell(op.key, role, r.status_code, r.headers.get("content-type", ""), r.text[:300])


async def _row(gw: httpx.AsyncClient, op: Operation, w: World) -> list[Cell]:
    """One operation's cells, one caller after another: refused callers first, so an allowed
    write cannot change what a refusal sees; a one-shot write gets its fresh object or undo."""
    spec = rule(POLICY[op.key]) if op.key in POLICY else dict.fromkeys(ROLES, 0)
    before, after = ONE_SHOT.get(op.key, (None, None))
    cells = []
    for role in sorted(ROLES, key=lambda role: spec[role] == "ok"):
        fresh = await before(gw, w) if before and spec[role] == "ok" else {}
        cells.append(await _call(gw, op, role, w, **fresh))
        if after and spec[role] == "ok":
            await after(gw, w)
    return cells


def verdict(cell: Cell, expected: int | str) -> str | None:
    """None when the cell matches its policy, else what is wrong."""
    if cell.status in (500, 502, 504):
        return f"{cell.status} (a 500 is a bug)"
    if expected == "ok":
        if cell.status in (401, 403, 404):
            return f"refused {cell.status}, policy allows"
        return None
    if cell.status != expected:
        return f"{cell.status}, policy says {expected}"
    if not cell.content_type.startswith(PROBLEM):
        return f"{cell.status} without a problem body"
    return None


@pytest.fixture(scope="module")
async def matrix_world(platform: Platform) -> Any:
    async with httpx.AsyncClient(base_url=platform.gateway, timeout=30) as gw:
        doc = await _document(gw)
        world = await _build_world(gw)
        yield gw, doc, world


async def _document(gw: httpx.AsyncClient) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        doc = (await gw.get("/openapi.json")).json()
        if not doc.get("x-hearth-unavailable") or time.monotonic() > deadline:
            assert not doc.get("x-hearth-unavailable"), doc.get("x-hearth-unavailable")
            return doc
        await asyncio.sleep(1)


def _dump(path: Path, cells: list[Cell]) -> None:
    """Write every cell's status (and the start of its body) as JSON."""
    table: dict[str, dict[str, int]] = {}
    for c in cells:
        table.setdefault(c.op, {})[c.role] = c.status
    texts = {f"{c.op}|{c.role}": c.text for c in cells}
    path.write_text(json.dumps({"table": table, "texts": texts}))


async def test_access_matrix(matrix_world: Any) -> None:
    gw, doc, world = matrix_world
    ops = build(doc, world)
    missing = [op.key for op in ops if op.key not in POLICY]
    sem = asyncio.Semaphore(CONCURRENCY)

    async def row(op: Operation) -> list[Cell]:
        async with sem:
            return await _row(gw, op, world)

    started = time.monotonic()
    assert set(DESTRUCTIVE) <= {op.key for op in ops}, set(DESTRUCTIVE) - {op.key for op in ops}
    safe = [op for op in ops if op.key not in DESTRUCTIVE]
    cells = [c for cells in await asyncio.gather(*map(row, safe)) for c in cells]
    by_key = {op.key: op for op in ops}
    for key in DESTRUCTIVE:
        cells.extend(await _row(gw, by_key[key], world))
    elapsed = time.monotonic() - started
    if os.environ.get("HEARTH_MATRIX_DUMP"):  # observed statuses, to draft policy lines
        _dump(Path(os.environ["HEARTH_MATRIX_DUMP"]), cells)
    assert not missing, f"{len(missing)} operations have no policy line:\n" + "\n".join(missing)
    wrong = []
    for c in cells:
        problem = verdict(c, rule(POLICY[c.op])[c.role])
        if problem:
            wrong.append(f"{c.op} as {c.role}: {problem}: {c.text[:160]}")
    print(
        f"matrix: {len(ops)} operations x {len(ROLES)} callers = {len(cells)} cells, "
        f"{elapsed:.1f} s; statuses {sorted(Counter(c.status for c in cells).items())}"
    )
    assert not wrong, f"{len(wrong)} cells disagree with the policy:\n" + "\n".join(wrong[:80])

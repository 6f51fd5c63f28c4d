"""Post formats, sanitized Markdown, edits with revisions, soft delete, pin/feature/lock, shares."""

from __future__ import annotations

import uuid
from html.parser import HTMLParser
from urllib.parse import urlsplit

from sqlalchemy import select

from hearth_content.models import Post
from servicekit.testing.harness import Identities, RunningService, eventually

PROBLEM = "application/problem+json"

CRAFTED = """# Hello
<script>alert('x')</script>
[click](javascript:alert(1)) [also](JaVaScRiPt:alert(1)) [data](data:text/html,<script>x</script>)
<img src="x" onerror="alert(1)"> <a href="#" onclick="steal()">a</a>
![pic](javascript:alert(2)) [fine](https://example.com/a)
<iframe src="https://evil.example"></iframe><svg onload=alert(3)>
"""


async def _published(content: RunningService, feed, identities: Identities, community: str,
                     user: uuid.UUID, **extra) -> dict:  # fmt: skip
    body = {"title": "A post", "body": "Hello **world**", "format": "text"} | extra
    r = await content.client.post(
        f"/communities/{community}/posts", json=body, headers=identities.headers(user)
    )
    assert r.status_code == 201, r.text
    assert await feed.verdict(r.json()["id"], "approved")
    return r.json()


class _Elements(HTMLParser):
    """Every element and attribute of an HTML fragment, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, attrs))


def _inert(html: str) -> None:
    """No active element, no handler, no URL scheme beyond http/https/mailto (text is harmless)."""
    parser = _Elements()
    parser.feed(html)
    for tag, attrs in parser.found:
        assert tag not in {"script", "iframe", "svg", "object", "embed", "style"}, html
        for name, value in attrs:
            assert not name.startswith("on"), (tag, name, html)
            if name in ("href", "src"):
                # A relative URL (no scheme) is a plain same-site path, never script.
                scheme = urlsplit(value or "").scheme
                assert scheme in ("", "http", "https", "mailto"), (value, html)


async def test_crafted_markdown_comes_back_inert(
    content: RunningService, feed, identities: Identities
) -> None:
    member = uuid.uuid4()
    community = await feed.community()
    await feed.member(community, member)
    r = await content.client.post(
        f"/communities/{community}/posts",
        json={"title": "Crafted", "body": CRAFTED, "format": "text"},
        headers=identities.headers(member),
    )
    assert r.status_code == 201, r.text
    post = r.json()
    _inert(post["body_html"])
    assert "<h1>Hello</h1>" in post["body_html"]
    assert 'href="https://example.com/a"' in post["body_html"]
    assert post["body"] == CRAFTED  # the source is kept (text, never served as HTML)
    assert post["kind"] == "article" and post["authorship"] == "member"
    # Editing re-renders through the same sanitizer.
    r = await content.client.patch(
        f"/posts/{post['id']}",
        json={"body": "<img src=x onerror=alert(1)>[x](javascript:void(0))"},
        headers=identities.headers(member),
    )
    assert r.status_code == 200, r.text
    _inert(r.json()["body_html"])


async def test_kinds_authorship_and_link_urls(
    content: RunningService, feed, identities: Identities
) -> None:
    owner, member = uuid.uuid4(), uuid.uuid4()
    community = await feed.community(owner=owner)
    await feed.member(community, member)
    url = f"/communities/{community}/posts"
    announce = {"title": "News", "body": "x", "format": "text", "kind": "announcement"}
    r = await content.client.post(url, json=announce, headers=identities.headers(member))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    partner = {"title": "P", "body": "x", "format": "text", "partner_name": "Acme Ltd"}
    r = await content.client.post(url, json=partner, headers=identities.headers(member))
    assert r.status_code == 403
    r = await content.client.post(url, json=announce, headers=identities.headers(owner))
    assert r.status_code == 201 and r.json()["authorship"] == "staff"
    r = await content.client.post(url, json=partner, headers=identities.headers(owner))
    assert r.status_code == 201, r.text
    assert r.json()["authorship"] == "partner" and r.json()["partner_name"] == "Acme Ltd"
    for bad in ("javascript:alert(1)", "ftp://x.example/a", "file:///etc/passwd", "//x.example"):
        link = {"title": "L", "format": "link", "url": bad}
        r = await content.client.post(url, json=link, headers=identities.headers(member))
        assert r.status_code == 422, (bad, r.text)
    link = {"title": "Given by the client", "format": "link", "url": "https://example.com/x"}
    r = await content.client.post(url, json=link, headers=identities.headers(member))
    assert r.status_code == 201 and r.json()["title"] == "Given by the client"
    image = {"title": "Pictures", "format": "image"}  # its files come as attachments
    r = await content.client.post(url, json=image, headers=identities.headers(member))
    assert r.status_code == 201 and r.json()["url"] is None
    r = await content.client.post(url, json={"title": "L", "format": "link"},
                                  headers=identities.headers(member))  # fmt: skip
    assert r.status_code == 422
    question = {"title": "Why?", "body": "Tell me", "format": "text", "kind": "question"}
    r = await content.client.post(url, json=question, headers=identities.headers(member))
    assert r.status_code == 201 and r.json()["accepted_answer_id"] is None


async def test_edit_keeps_revisions_for_author_and_staff(
    content: RunningService, feed, identities: Identities, stream_events, subject_prefix: str
) -> None:
    owner, author, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    community = await feed.community(owner=owner)
    await feed.member(community, author)
    await feed.member(community, other)
    post = await _published(content, feed, identities, community, author)
    url = f"/posts/{post['id']}"
    r = await content.client.patch(
        url, json={"title": "Renamed", "note": "typo"}, headers=identities.headers(author)
    )
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 2 and r.json()["edited_at"] is not None
    r = await content.client.patch(
        url, json={"body": "New *body*"}, headers=identities.headers(owner)
    )
    assert r.status_code == 200 and "<em>body</em>" in r.json()["body_html"]
    # Another member may neither edit nor read the history.
    r = await content.client.patch(url, json={"title": "Mine"}, headers=identities.headers(other))
    assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await content.client.get(f"{url}/revisions", headers=identities.headers(other))
    assert r.status_code == 403
    for reader in (identities.headers(author), identities.headers(owner),
                   identities.headers(None, "operator")):  # fmt: skip
        r = await content.client.get(f"{url}/revisions", headers=reader)
        assert r.status_code == 200, r.text
        revisions = r.json()
        assert [rev["number"] for rev in revisions] == [1, 2]
        assert revisions[0]["editor_id"] == str(author) and revisions[0]["note"] == "typo"
        assert revisions[0]["changes"] == {"title": {"from": "A post", "to": "Renamed"}}
        assert revisions[1]["editor_id"] == str(owner)
        assert revisions[1]["changes"]["body"]["from"] == "Hello **world**"
    r = await content.client.patch(url, json={"title": "  "}, headers=identities.headers(author))
    assert r.status_code == 422

    async def edited() -> list:
        return [
            e
            for e in await stream_events(f"{subject_prefix}.content.post.edited.v1")
            if e.data["post_id"] == post["id"]
        ]

    events = await eventually(lambda: _at_least(edited, 2))
    assert events[0].data["changed"] == ["title"] and events[0].data["community_id"] == community
    assert events[0].data["author_id"] == str(author) and events[0].data["edited_at"]


async def _at_least(fetch, n: int) -> list | None:
    found = await fetch()
    return found if len(found) >= n else None


async def test_delete_is_soft_and_limited_to_author_and_staff(
    content: RunningService, feed, identities: Identities, stream_events, subject_prefix: str
) -> None:
    owner, author, other, moderator = (uuid.uuid4() for _ in range(4))
    community = await feed.community(owner=owner)
    for user in (author, other):
        await feed.member(community, user)
    await feed.member(community, moderator, role="moderator")
    first = await _published(content, feed, identities, community, author)
    second = await _published(content, feed, identities, community, author)
    for refused in (other, moderator):
        r = await content.client.delete(
            f"/posts/{first['id']}", headers=identities.headers(refused)
        )
        assert r.status_code == 403 and r.headers["content-type"] == PROBLEM
    r = await content.client.delete(f"/posts/{first['id']}", headers=identities.headers(author))
    assert r.status_code == 204
    r = await content.client.delete(f"/posts/{second['id']}", headers=identities.headers(owner))
    assert r.status_code == 204
    for reader in (author, other):
        r = await content.client.get(f"/posts/{first['id']}", headers=identities.headers(reader))
        assert r.status_code == 404
        r = await content.client.get(
            f"/communities/{community}/posts", headers=identities.headers(reader)
        )
        assert r.json()["items"] == []
    # Evidence kept: the row is there, and platform staff still read it.
    async with content.runtime.db.session() as session:
        row = (await session.execute(select(Post).where(Post.id == uuid.UUID(first["id"])))).one()
        assert row[0].deleted_by == author and row[0].body == "Hello **world**"
    r = await content.client.get(
        f"/posts/{first['id']}", headers=identities.headers(None, "operator")
    )
    assert r.status_code == 200 and r.json()["deleted_at"] is not None

    async def deleted() -> list:
        return [
            e
            for e in await stream_events(f"{subject_prefix}.content.post.deleted.v1")
            if e.data["community_id"] == community
        ]

    events = await eventually(lambda: _at_least(deleted, 2))
    assert {e.data["deleted_by"] for e in events} == {str(author), str(owner)}


async def test_pin_feature_lock_by_staff_and_admins_only(
    content: RunningService, feed, identities: Identities, stream_events, subject_prefix: str
) -> None:
    owner, admin, author, moderator = (uuid.uuid4() for _ in range(4))
    community = await feed.community(owner=owner)
    await feed.member(community, admin, role="admin")
    await feed.member(community, author)
    await feed.member(community, moderator, role="moderator")
    a = await _published(content, feed, identities, community, author)
    b = await _published(content, feed, identities, community, author)
    for path in ("pin", "featured", "comments-lock"):
        for refused in (author, moderator, uuid.uuid4()):
            for method in ("PUT", "DELETE"):
                r = await content.client.request(
                    method,
                    f"/posts/{a['id']}/{path}",
                    json={"order": 0},
                    headers=identities.headers(refused),
                )
                assert r.status_code in (403, 404), (path, method, r.status_code)
                assert r.headers["content-type"] == PROBLEM
    r = await content.client.put(
        f"/posts/{a['id']}/pin", json={"order": 2}, headers=identities.headers(owner)
    )
    assert r.status_code == 200 and r.json()["pin_order"] == 2
    r = await content.client.put(
        f"/posts/{b['id']}/pin", json={"order": 1}, headers=identities.headers(admin)
    )
    assert r.status_code == 200
    r = await content.client.get(
        f"/communities/{community}/pinned", headers=identities.headers(author)
    )
    assert [p["id"] for p in r.json()] == [b["id"], a["id"]]
    r = await content.client.delete(f"/posts/{b['id']}/pin", headers=identities.headers(admin))
    assert r.status_code == 200 and r.json()["pin_order"] is None
    r = await content.client.put(f"/posts/{a['id']}/featured", headers=identities.headers(admin))
    assert r.status_code == 200 and r.json()["featured"] is True
    r = await content.client.put(
        f"/posts/{a['id']}/comments-lock", headers=identities.headers(None, "operator")
    )
    assert r.status_code == 200 and r.json()["comments_locked"] is True
    # A post still in review cannot be pinned.
    r = await content.client.post(
        f"/communities/{community}/posts",
        json={"title": "Pending", "body": "x", "format": "text"},
        headers=identities.headers(author),
    )
    r = await content.client.put(
        f"/posts/{r.json()['id']}/pin", json={"order": 0}, headers=identities.headers(owner)
    )
    assert r.status_code == 409

    async def pinned() -> list:
        return [
            e
            for e in await stream_events(f"{subject_prefix}.content.post.pinned.v1")
            if e.data["community_id"] == community
        ]

    events = await eventually(lambda: _at_least(pinned, 3))
    assert [e.data["pinned"] for e in events] == [True, True, False]


async def test_share_into_a_community_of_the_sharer(
    content: RunningService, feed, identities: Identities, stream_events, subject_prefix: str
) -> None:
    author, sharer, reader = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    source = await feed.community()
    target = await feed.community()
    elsewhere = await feed.community()
    private = await feed.community(visibility="private")
    await feed.member(source, author)
    await feed.member(source, sharer)
    await feed.member(target, sharer)
    await feed.member(target, reader)
    await feed.member(private, sharer)
    post = await _published(content, feed, identities, source, author)
    shares = f"/posts/{post['id']}/shares"
    # Not a member of the target: refused.
    r = await content.client.post(
        shares, json={"community_id": elsewhere}, headers=identities.headers(sharer)
    )
    assert r.status_code == 403 and r.json()["type"] == "urn:hearth:problem:not-a-member"
    r = await content.client.post(
        shares, json={"community_id": target}, headers=identities.headers(sharer)
    )
    assert r.status_code == 201, r.text
    share = r.json()
    assert share["shared_from_id"] == post["id"] and share["community_id"] == target
    r = await content.client.get(f"/posts/{post['id']}", headers=identities.headers(author))
    assert r.json()["share_count"] == 1
    r = await content.client.get(f"/posts/{share['id']}", headers=identities.headers(reader))
    assert r.status_code == 200
    r = await content.client.get(f"/communities/{target}/posts", headers=identities.headers(reader))
    assert [p["id"] for p in r.json()["items"]] == [share["id"]]
    # A private community's post never travels.
    secret = await _published(content, feed, identities, private, sharer)
    r = await content.client.post(
        f"/posts/{secret['id']}/shares", json={"community_id": target},
        headers=identities.headers(sharer),
    )  # fmt: skip
    assert r.status_code == 403 and r.json()["type"] == "urn:hearth:problem:not-shareable"
    # Once the original is deleted, its share is no longer visible.
    r = await content.client.delete(f"/posts/{post['id']}", headers=identities.headers(author))
    assert r.status_code == 204
    r = await content.client.get(f"/posts/{share['id']}", headers=identities.headers(reader))
    assert r.status_code == 404
    r = await content.client.get(f"/communities/{target}/posts", headers=identities.headers(reader))
    assert r.json()["items"] == []

    async def shared() -> list:
        return [
            e
            for e in await stream_events(f"{subject_prefix}.content.post.shared.v1")
            if e.data["post_id"] == post["id"]
        ]

    [event] = await eventually(shared)
    assert event.data["to_community_id"] == target and event.data["sharer_id"] == str(sharer)
    assert event.data["community_id"] == source and event.data["author_id"] == str(author)


def test_sanitizer_alone_neutralizes_raw_html() -> None:
    """Defence in depth: even HTML that got past the parser is cleaned by the allow-list."""
    import nh3

    from hearth_content import rendering

    raw = (
        '<p onclick="x()">hi<script>alert(1)</script></p><a href="javascript:alert(1)">a</a>'
        '<img src="x" onerror="alert(1)"><iframe src="https://e.example"></iframe>'
        '<a href="https://ok.example" style="color:red">ok</a>'
    )
    clean = nh3.clean(
        raw,
        tags=set(rendering.ALLOWED_TAGS),
        attributes={k: set(v) for k, v in rendering.ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(rendering.URL_SCHEMES),
    )
    _inert(clean)
    assert "style" not in clean and 'href="https://ok.example"' in clean

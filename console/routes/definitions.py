"""The definitions as their files say them, for procedure managers and administrators: read
only, since they change through review, not through a web form."""

from __future__ import annotations

from aiohttp import web

from console.access import definition_readers_only
from console.pages import render
from console.state import console_of
from domain.errors import InvalidDefinition
from procedures.definitions import load_definitions

routes = web.RouteTableDef()


@routes.get("/definitions")
@definition_readers_only
async def definitions(request: web.Request) -> web.StreamResponse:
    folder = console_of(request).settings.definitions_dir
    try:
        load_definitions(folder)
        problems: list[str] = []
    except InvalidDefinition as exc:
        problems = exc.problems
    files = [folder / "schemes.yaml", *sorted((folder / "procedures").glob("*.yaml"))]
    sources = [
        (path.relative_to(folder).as_posix(), path.read_text(encoding="utf-8"))
        for path in files
        if path.is_file()
    ]
    return render(request, "definitions.html", folder=str(folder), sources=sources, problems=problems)

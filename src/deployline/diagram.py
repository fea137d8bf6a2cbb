"""`deployline diagram`: draw the pipeline of a synthesized template as Mermaid text or SVG.

The drawing is read from the template itself (the `AWS::CodePipeline::Pipeline` resource), so it
shows what would be deployed: stages in order, their actions, actions that share a run order
side by side (they run in parallel), approvals, and what each deploy does (ECS rolling update or
CodeDeploy blue/green). The SVG is plain XML laid out here: no renderer, no network.

    deployline diagram                         # synthesize deployline.yaml in a temp dir
    deployline diagram --from cdk.out          # read an existing cloud assembly
    deployline diagram -t pipeline.template.json --format svg -o docs/pipeline.svg
"""

from __future__ import annotations

import itertools
import re
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any
from xml.sax.saxutils import escape

import typer

from deployline.checks.loader import TemplateParseError, parse_text
from deployline.checks.pipeline import Action, Deploy, Pipeline, Stage
from deployline.checks.template import Template

PIPELINE_TYPE = "AWS::CodePipeline::Pipeline"


class DiagramError(Exception):
    """The input cannot be drawn; the message says what is wrong and how to fix it."""


_KINDS = {
    ("Source", "CodeStarSourceConnection"): "Git source (connection)",
    ("Source", "S3"): "S3 source",
    ("Source", "CodeCommit"): "CodeCommit source",
    ("Source", "ECR"): "ECR source",
    ("Build", "CodeBuild"): "CodeBuild build",
    ("Test", "CodeBuild"): "CodeBuild test",
    ("Invoke", "Lambda"): "Lambda check",
    ("Approval", "Manual"): "manual approval",
    ("Deploy", "ECS"): "ECS rolling deploy",
    ("Deploy", "CodeDeployToECS"): "CodeDeploy blue/green",
}
_CHANGE_SETS = {
    "CHANGE_SET_REPLACE": "change set (plan)",
    "CHANGE_SET_EXECUTE": "change set execute",
    "DELETE_ONLY": "stack deletion",
}


def kind(action: Action) -> str:
    """What an action does, in a few words ("ECS rolling deploy", "pipeline self-update"), from
    the pipeline model (`checks.pipeline`)."""
    if action.deploy is Deploy.SELF_UPDATE:
        return "pipeline self-update"
    if action.provider == "CloudFormation":
        mode = str(action.config("ActionMode") or "")
        return _CHANGE_SETS.get(mode, "CloudFormation deploy")
    if action.deploys and action.is_codebuild:
        return "CodeBuild deploy"
    category, provider = action.category or "?", action.provider or "?"
    return _KINDS.get((category, provider), f"{provider} {category}")


def _ranks(stage: Stage) -> list[list[Action]]:
    """The stage's actions grouped by run order, in run order; each group runs in parallel."""
    orders = sorted({a.run_order for a in stage.actions})
    return [[a for a in stage.actions if a.run_order == o] for o in orders]


def _rolls_back(stage: Stage) -> bool:
    on_failure = stage.raw.get("OnFailure")
    return isinstance(on_failure, Mapping) and on_failure.get("Result") == "ROLLBACK"


# ---- reading templates ---------------------------------------------------------------------


def pipelines_in(template: Mapping[str, Any], source: str = "<template>") -> list[Pipeline]:
    """Every CodePipeline in a parsed template, in logical-ID order, read by the checker's
    pipeline model (`checks.pipeline`).

    Raises DiagramError when the template has no Resources or a pipeline has no Stages.
    """
    resources = template.get("Resources")
    if not isinstance(resources, Mapping):
        raise DiagramError(f"{source}: not a CloudFormation template (no Resources section)")
    parsed = Template(file=source, data=dict(template))
    found = []
    for pipeline in sorted(parsed.pipelines, key=lambda p: p.logical_id):
        stages_raw = pipeline.resource.prop("Stages")
        if not isinstance(stages_raw, list) or not stages_raw:
            raise DiagramError(f"{source}: pipeline {pipeline.logical_id} has no Stages to draw")
        for i, raw_stage in enumerate(stages_raw):
            if not isinstance(raw_stage, Mapping):
                raise DiagramError(f"{source}: stage {i} of {pipeline.logical_id} is not a mapping")
        found.append(pipeline)
    return found


def _template_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(path.glob("*.template.json"))
        if not files:
            raise DiagramError(
                f"{path}: no *.template.json in this directory; pass a cdk.out directory "
                "written by `deployline synth`, or a template file"
            )
        return files
    raise DiagramError(
        f"{path}: no such file or directory; pass a template file or a cdk.out directory "
        "(run `deployline synth` first), or omit --template to synthesize deployline.yaml"
    )


def load_pipelines(path: str | Path) -> list[Pipeline]:
    """The pipelines in a template file (JSON or YAML) or in every template of a cdk.out dir.

    Raises DiagramError when nothing can be read or no template holds a pipeline.
    """
    path = Path(path)
    found: list[Pipeline] = []
    for file in _template_files(path):
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise DiagramError(f"{file}: cannot read it ({exc})") from None
        try:
            data = parse_text(text, str(file))
        except TemplateParseError as exc:
            raise DiagramError(f"{file}: not a valid template: {exc}") from None
        if not isinstance(data, Mapping):
            raise DiagramError(f"{file}: not a CloudFormation template (not a mapping)")
        found.extend(pipelines_in(data, str(file)))
    if not found:
        raise DiagramError(
            f"{path}: no {PIPELINE_TYPE} resource found; point --template at the pipeline "
            "stack's template (`*-pipeline-*.template.json`) or its cdk.out directory"
        )
    return found


def choose(pipelines: Sequence[Pipeline], name: str | None) -> Pipeline:
    """The pipeline called `name`, or the only one. Raises DiagramError otherwise."""
    names = [p.name for p in pipelines]
    if name is not None:
        for p in pipelines:
            if p.name == name:
                return p
        raise DiagramError(f"no pipeline named {name!r}; found {', '.join(names)}")
    if len(pipelines) > 1:
        raise DiagramError(
            f"several pipelines found ({', '.join(names)}); pick one with --pipeline"
        )
    return pipelines[0]


# ---- Mermaid -------------------------------------------------------------------------------


def _node_id(stage: str, action: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", f"{stage}__{action}")


def _mermaid_label(text: str) -> str:
    return text.replace('"', "#quot;")


def to_mermaid(pipeline: Pipeline) -> str:
    """A Mermaid flowchart: one subgraph per stage, left to right; actions that share a run
    order are joined with `&` on one edge line, so Mermaid puts them on one rank."""
    lines = [
        f"%% {pipeline.name}: generated by `deployline diagram` from the synthesized template",
        "flowchart LR",
    ]
    for i, stage in enumerate(pipeline.stages):
        title = stage.name + (" (rolls back on failure)" if _rolls_back(stage) else "")
        lines.append(f'  subgraph S{i}["{_mermaid_label(title)}"]')
        lines.append("    direction LR")
        for rank in _ranks(stage):
            for a in rank:
                node = _node_id(stage.name, a.name)
                label = _mermaid_label(f"{a.name}<br/><small>{kind(a)}</small>")
                shape = ('{{"', '"}}') if a.category == "Approval" else ('["', '"]')
                lines.append(f"    {node}{shape[0]}{label}{shape[1]}")
        ranks = _ranks(stage)
        for before, after in itertools.pairwise(ranks):
            lines.append(f"    {_join(stage, before)} --> {_join(stage, after)}")
        lines.append("  end")
    for (i, before_stage), (j, after_stage) in itertools.pairwise(enumerate(pipeline.stages)):
        if not _ranks(before_stage) or not _ranks(after_stage):
            lines.append(f"  S{i} --> S{j}")
            continue
        lines.append(
            f"  {_join(before_stage, _ranks(before_stage)[-1])} --> "
            f"{_join(after_stage, _ranks(after_stage)[0])}"
        )
    lines.extend(_mermaid_styles(pipeline))
    return "\n".join(lines) + "\n"


def _join(stage: Stage, rank: Sequence[Action]) -> str:
    return " & ".join(_node_id(stage.name, a.name) for a in rank)


_COLORS = {
    "Source": ("#e8f1fb", "#2f6db5"),
    "Build": ("#eaf6ec", "#2e7d32"),
    "Test": ("#fff6e0", "#b7791f"),
    "Invoke": ("#f3ecfb", "#6b46c1"),
    "Approval": ("#fdecef", "#c53030"),
    "Deploy": ("#e6f7f7", "#00796b"),
}
_DEFAULT_COLOR = ("#f2f2f2", "#555555")


def _mermaid_styles(pipeline: Pipeline) -> list[str]:
    lines = []
    used = sorted({a.category or "?" for s in pipeline.stages for a in s.actions})
    for category in used:
        fill, stroke = _COLORS.get(category, _DEFAULT_COLOR)
        lines.append(f"  classDef {category.lower()} fill:{fill},stroke:{stroke},color:#1a1a1a")
    for stage in pipeline.stages:
        for a in stage.actions:
            category = (a.category or "?").lower()
            lines.append(f"  class {_node_id(stage.name, a.name)} {category}")
    return lines


# ---- SVG -----------------------------------------------------------------------------------

_BOX_W = 178
_BOX_H = 50
_GAP_Y = 16
_RANK_GAP = 44
_STAGE_GAP = 40
_STAGE_PAD = 14
_STAGE_HEAD = 30
_MARGIN = 24
_TITLE_H = 34


@dataclass(frozen=True)
class _Box:
    action: Action
    x: int
    y: int


def _layout(pipeline: Pipeline) -> tuple[list[tuple[Stage, int, int, int]], list[list[_Box]], int]:
    """(stage frames as (stage, x, width, column count), ranks of boxes, total width)."""
    tallest = max((len(r) for s in pipeline.stages for r in _ranks(s)), default=1)
    inner_h = tallest * _BOX_H + (tallest - 1) * _GAP_Y
    top = _MARGIN + _TITLE_H + _STAGE_HEAD
    frames = []
    ranks: list[list[_Box]] = []
    x = _MARGIN
    for stage in pipeline.stages:
        columns = max(len(_ranks(stage)), 1)
        width = 2 * _STAGE_PAD + columns * _BOX_W + (columns - 1) * _RANK_GAP
        frames.append((stage, x, width, columns))
        for c, rank in enumerate(_ranks(stage)):
            col_x = x + _STAGE_PAD + c * (_BOX_W + _RANK_GAP)
            height = len(rank) * _BOX_H + (len(rank) - 1) * _GAP_Y
            y0 = top + _STAGE_PAD + (inner_h - height) // 2
            ranks.append([_Box(a, col_x, y0 + i * (_BOX_H + _GAP_Y)) for i, a in enumerate(rank)])
        x += width + _STAGE_GAP
    return frames, ranks, x - _STAGE_GAP + _MARGIN


def to_svg(pipeline: Pipeline) -> str:
    """An SVG picture of the pipeline: stage frames left to right, one column per run order,
    parallel actions stacked in one column, arrows from each column to the next."""
    frames, ranks, width = _layout(pipeline)
    tallest = max((len(r) for r in ranks), default=1)
    inner_h = tallest * _BOX_H + (tallest - 1) * _GAP_Y
    frame_top = _MARGIN + _TITLE_H
    frame_h = _STAGE_HEAD + 2 * _STAGE_PAD + inner_h
    height = frame_top + frame_h + _MARGIN + 22
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" '
        'role="img">',
        f"<title>{escape(pipeline.name)}: {len(pipeline.stages)} stages</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" '
        'markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
        '<path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/></marker></defs>',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        f'<text x="{_MARGIN}" y="{_MARGIN + 18}" font-size="18" font-weight="bold" '
        f'fill="#1a1a1a">{escape(pipeline.name)}</text>',
    ]
    for stage, x, w, _columns in frames:
        stroke = "#c53030" if _rolls_back(stage) else "#9aa5b1"
        out.append(
            f'<g class="stage" data-stage="{_attr(stage.name)}">'
            f'<rect x="{x}" y="{frame_top}" width="{w}" height="{frame_h}" rx="10" '
            f'fill="#f8fafc" stroke="{stroke}" stroke-width="1.2"/>'
            f'<text x="{x + _STAGE_PAD}" y="{frame_top + 20}" font-size="14" '
            f'font-weight="bold" fill="#1a1a1a">{escape(stage.name)}</text>'
        )
        if _rolls_back(stage):
            out.append(
                f'<text x="{x + w - _STAGE_PAD}" y="{frame_top + 20}" font-size="10" '
                'text-anchor="end" fill="#c53030">rolls back on failure</text>'
            )
        out.append("</g>")
    for before, after in itertools.pairwise(ranks):
        for a in before:
            for b in after:
                x1, y1 = a.x + _BOX_W, a.y + _BOX_H // 2
                x2, y2 = b.x, b.y + _BOX_H // 2
                mid = (x1 + x2) // 2
                out.append(
                    f'<path d="M {x1} {y1} C {mid} {y1}, {mid} {y2}, {x2 - 2} {y2}" '
                    'fill="none" stroke="#555" stroke-width="1.4" marker-end="url(#arrow)"/>'
                )
    for rank in ranks:
        for box in rank:
            out.append(_svg_box(box))
    out.append(
        f'<text x="{_MARGIN}" y="{height - _MARGIN + 6}" font-size="11" fill="#555">'
        "Actions in one column run in parallel. Generated by deployline diagram.</text>"
    )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _attr(text: str) -> str:
    """`text` escaped for a double-quoted XML attribute."""
    return escape(text, {'"': "&quot;"})


def _svg_box(box: _Box) -> str:
    a = box.action
    fill, stroke = _COLORS.get(a.category or "?", _DEFAULT_COLOR)
    cx = box.x + _BOX_W // 2
    shape = (
        f'<rect x="{box.x}" y="{box.y}" width="{_BOX_W}" height="{_BOX_H}" rx="'
        f'{_BOX_H // 2 if a.category == "Approval" else 6}" fill="{fill}" stroke="{stroke}" '
        'stroke-width="1.5"/>'
    )
    return (
        f'<g class="action" data-action="{_attr(a.name)}" data-run-order="{a.run_order}">'
        f"{shape}"
        f'<text x="{cx}" y="{box.y + 21}" font-size="13" font-weight="bold" '
        f'text-anchor="middle" fill="#1a1a1a">{escape(a.name)}</text>'
        f'<text x="{cx}" y="{box.y + 38}" font-size="10.5" text-anchor="middle" '
        f'fill="#333">{escape(kind(a))}</text></g>'
    )


# ---- command -------------------------------------------------------------------------------


class Format(StrEnum):
    mermaid = "mermaid"
    svg = "svg"


def render(pipeline: Pipeline, fmt: Format) -> str:
    """The drawing of `pipeline` in `fmt`."""
    return to_svg(pipeline) if fmt is Format.svg else to_mermaid(pipeline)


def _synthesized_pipelines(config: Path) -> list[Pipeline]:
    """Synthesize `config` into a temporary directory (no check) and read its pipelines."""
    from deployline.config import ConfigError
    from deployline.synth import SynthError, synthesize

    with tempfile.TemporaryDirectory(prefix="deployline-diagram-") as tmp:
        try:
            result = synthesize(config, Path(tmp) / "cdk.out", check=False)
        except ConfigError as exc:
            problems = "\n".join(f"  {p}" for p in exc.problems)
            raise DiagramError(f"{config}: the configuration is invalid:\n{problems}") from None
        except SynthError as exc:
            raise DiagramError(f"{config}: {exc}") from None
        return load_pipelines(result.outdir)


def _fail(message: str) -> typer.Exit:
    sys.stderr.write(f"error: {message}\n")
    return typer.Exit(2)


def diagram_command(
    config: Annotated[
        Path,
        typer.Option(
            "--config", "-c", help="deployline.yaml to synthesize when no --template is given."
        ),
    ] = Path("deployline.yaml"),
    template: Annotated[
        Path | None,
        typer.Option(
            "--template",
            "--from",
            "-t",
            help="A synthesized template (JSON or YAML) or a cdk.out directory. "
            "Default: synthesize --config in a temporary directory.",
        ),
    ] = None,
    format: Annotated[
        Format, typer.Option("--format", "-f", help="mermaid (text) or svg (picture).")
    ] = Format.mermaid,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here. Default: standard output.")
    ] = None,
    pipeline: Annotated[
        str | None,
        typer.Option("--pipeline", help="The pipeline to draw when there are several."),
    ] = None,
) -> None:
    """Draw the pipeline (stages, actions, parallel branches, approvals, deploy kinds) as
    Mermaid text or an SVG picture, from the synthesized template."""
    try:
        if template is not None:
            found = load_pipelines(template)
        elif not config.is_file():
            raise DiagramError(
                f"{config}: no such file; pass --config deployline.yaml, or --template with a "
                "synthesized template or cdk.out directory"
            )
        else:
            found = _synthesized_pipelines(config)
        drawing = render(choose(found, pipeline), format)
    except DiagramError as exc:
        raise _fail(str(exc)) from None
    if output is None:
        sys.stdout.write(drawing)
        return
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(drawing, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"{output}: cannot write the diagram ({exc.strerror or exc})") from None
    sys.stderr.write(f"wrote {output}\n")

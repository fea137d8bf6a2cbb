"""DL705: resources that depend on each other in a cycle."""

from __future__ import annotations

from collections.abc import Iterator

from deployline.checks.intrinsics import referenced_names
from deployline.checks.model import Hit, Rule, Severity
from deployline.checks.template import Template


def dependency_graph(template: Template) -> dict[str, set[str]]:
    """Resource -> resources it depends on through Ref, Fn::GetAtt, Fn::Sub (in Properties)
    and DependsOn. Self-references are kept: CloudFormation rejects them too."""
    resources = template.resources
    graph: dict[str, set[str]] = {}
    for lid, res in resources.items():
        edges = {n for n in referenced_names(res.raw.get("Properties")) if n in resources}
        edges |= {d for d in res.depends_on if d in resources}
        graph[lid] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components that form cycles (two or more members, or a self-loop),
    by an iterative Tarjan."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component: list[str] = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1 or node in graph.get(node, ()):
                    found.append(sorted(component))
    return found


class DependencyCycle(Rule):
    """Builds the dependency graph from Ref, Fn::GetAtt and Fn::Sub in Properties and from
    DependsOn, finds its strongly connected components (Tarjan, iterative) and reports every
    resource on a cycle, self-references included."""

    id = "DL705"
    severity = Severity.CRITICAL
    family = "Organisation"
    seed = "000 §7"
    title = "Circular dependency between resources"
    resource_types = ()
    rationale = (
        "CloudFormation refuses a template whose resources depend on each other in a cycle "
        "(Circular dependency between resources): nothing deploys."
    )
    remediation = (
        "Break the cycle: move the back-reference into a separate resource (an "
        "AWS::IAM::Policy, a SecurityGroupIngress, a BucketPolicy) or drop a DependsOn."
    )
    fix_example = """\
# Instead of a role policy that names the function that uses the role:
FunctionPolicy:
  Type: AWS::IAM::Policy
  Properties:
    Roles: [!Ref FunctionRole]
    PolicyDocument:
      Statement:
        - {Effect: Allow, Action: lambda:InvokeFunction, Resource: !GetAtt Function.Arn}
"""

    def check(self, template: Template) -> Iterator[Hit]:
        for component in cycles(dependency_graph(template)):
            loop = " -> ".join([*component, component[0]]) if len(component) > 1 else component[0]
            for member in component:
                yield self.hit(
                    member,
                    "",
                    f"{member} is on a dependency cycle ({loop}): CloudFormation cannot order "
                    "these resources",
                )

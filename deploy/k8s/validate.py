#!/usr/bin/env python3
"""Renders deploy/k8s/base and every overlay the way kustomize does, for
the subset of kustomize they use (resources, images, JSON 6902 patches with
a kind/name target; anything else is refused, so a kustomization cannot
grow past what is checked here), then validates every object strictly
against the Kubernetes schemas (kubernetes-validate). Offline: no cluster,
no kustomize binary. Run by deploy/validate."""

import json
import pathlib
import sys

import jsonpatch
import kubernetes_validate
import yaml

VERSION = "1.33.0"
ALLOWED = {"apiVersion", "kind", "resources", "images", "patches"}


def render(directory: pathlib.Path) -> list:
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unknown = set(kustomization) - ALLOWED
    if unknown:
        sys.exit(f"{directory}: kustomization fields not checked here: {sorted(unknown)}")
    objects = []
    for resource in kustomization.get("resources", []):
        path = directory / resource
        if path.is_dir():
            objects.extend(render(path))
        else:
            objects.extend(o for o in yaml.safe_load_all(path.read_text()) if o)
    for patch in kustomization.get("patches", []):
        target = patch["target"]
        ops = yaml.safe_load((directory / patch["path"]).read_text())
        matched = [o for o in objects
                   if o["kind"] == target["kind"] and o["metadata"]["name"] == target["name"]]
        if len(matched) != 1:
            sys.exit(f"{directory}: patch {patch['path']} matches {len(matched)} objects")
        index = objects.index(matched[0])
        objects[index] = jsonpatch.apply_patch(matched[0], ops)
    for image in kustomization.get("images", []):
        for obj in objects:
            for container in containers(obj):
                name, _, tag = container["image"].partition(":")
                if name == image["name"]:
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    return objects


def containers(obj: dict) -> list:
    spec = obj.get("spec", {})
    template = spec.get("template") or spec.get("jobTemplate", {}).get("spec", {}).get("template")
    return (template or {}).get("spec", {}).get("containers", [])


def main() -> None:
    root = pathlib.Path(__file__).resolve().parent
    targets = [root / "base"] + sorted((root / "overlays").iterdir())
    failed = False
    for target in targets:
        objects = render(target)
        bad = 0
        for obj in objects:
            name = f"{target.name}: {obj['kind']}/{obj['metadata']['name']}"
            try:
                kubernetes_validate.validate(obj, VERSION, strict=True)
            except kubernetes_validate.ValidationError as e:
                failed = True
                bad += 1
                print(f"FAIL {name}: {e.message} at {list(e.path)}")
        images = sorted({c["image"] for o in objects for c in containers(o)})
        print(f"k8s: {target.name}: {len(objects) - bad} of {len(objects)} objects valid; "
              f"images {json.dumps(images)}")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()

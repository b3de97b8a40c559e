"""docs/deploy.md's Hugging Face Space: the Space card's front matter and the files its upload command sends."""

import fnmatch
import re
import shlex

from huggingface_hub import SpaceCard

from .conftest import ROOT


def test_the_space_card_is_a_docker_space_serving_the_demo_port():
    card = SpaceCard.load(ROOT / "hub_cards" / "space_card.md")
    assert card.data.sdk == "docker" and card.data.app_port == 7860
    assert card.data.license == "other" and card.data.license_link == "data/models/side-default/LICENSE"
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "EXPOSE 7860" in dockerfile and '"--port", "7860"' in dockerfile


def _upload_patterns() -> tuple[list[str], list[str]]:
    """The --include and --exclude globs of the deploy guide's `hf upload` of the repository."""
    guide = (ROOT / "docs" / "deploy.md").read_text()
    command = re.search(r"^hf upload user/phonegrade \. \..*?(?=^hf |^```)", guide, re.S | re.M).group(0)
    words = shlex.split(command.replace("\\\n", " "))
    include = words[words.index("--include") + 1: words.index("--exclude")]
    exclude = words[words.index("--exclude") + 1:]
    return include, exclude


def test_the_upload_command_sends_every_file_the_dockerfile_copies():
    include, exclude = _upload_patterns()
    copied = [line.split()[1:-1] for line in (ROOT / "Dockerfile").read_text().splitlines()
              if line.startswith("COPY")]
    sources = [source for sources in copied for source in sources]
    assert {"pyproject.toml", "phonegrade", "data/models", ".ci/constraints.txt"} <= set(sources)
    for source in sources:
        path = ROOT / source
        assert path.exists(), f"the Dockerfile copies {source}, which the repository lacks"
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in
                                                p.parts and "checkpoints" not in p.parts]
        for file in files:
            relative = file.relative_to(ROOT).as_posix()
            if relative == "README.md":  # the Space's own card takes its place (uploaded as README.md)
                continue
            assert any(fnmatch.fnmatch(relative, pattern) for pattern in include), f"{relative} is not uploaded"
            assert not any(fnmatch.fnmatch(relative, pattern) for pattern in exclude), f"{relative} is excluded"

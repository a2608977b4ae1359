"""Push a folder (model export or dataset) to the Hugging Face Hub or the mirror in ``HF_ENDPOINT``.

One ``create_repo(exist_ok=True)`` and one ``upload_folder`` call: the upload is a single
commit, so a failed push leaves no partial commit behind. The token comes from ``HF_TOKEN``
or the saved login (``hf auth login``); it is never printed or logged, and it is scrubbed
from error messages.

>>> plan = upload_plan(Path("runs/whisper-base-lora/export"))  # doctest: +SKIP
>>> push_folder(Path("runs/whisper-base-lora/export"), "me/whisper-base-cs-mage", token=resolve_token())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from asr.errors import ASRError

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"


class HubError(ASRError):
    """A Hugging Face Hub push failed (the message says whether anything was committed)."""


class HubCredentialsError(HubError):
    """No Hugging Face token was found, or the Hub rejected it."""


class InvalidRepoIdError(HubError):
    """A repository id is not a valid ``user/name`` (checked before any network call)."""


class HubNetworkError(HubError):
    """The Hub (or ``HF_ENDPOINT``) could not be reached, or answered with a server error."""


@dataclass(frozen=True)
class UploadFile:
    """One file of an upload: its path in the repository and its size in bytes."""

    path: str
    size: int


def endpoint() -> str:
    """``HF_ENDPOINT`` (a mirror or a test server) or huggingface.co."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def validate_repo_id(repo_id: str) -> str:
    """Check ``user/name`` with huggingface_hub's own validator, before any network call."""
    # huggingface_hub's API takes seconds to import; asr prepare loads this module without pushing
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id as hf_validate

    if repo_id.count("/") != 1:
        raise InvalidRepoIdError(
            f"--push-to-hub {repo_id!r}: expected USER/REPO (or ORG/REPO), e.g. me/whisper-cs-mage"
        )
    try:
        hf_validate(repo_id)
    except HFValidationError as err:
        raise InvalidRepoIdError(f"--push-to-hub {repo_id!r}: {err}") from err
    return repo_id


def resolve_token() -> str:
    """``HF_TOKEN`` or the saved login; a clear error when there is neither."""
    from huggingface_hub import get_token  # slow to import, as above

    token = get_token()
    if not token:
        raise HubCredentialsError(
            "no Hugging Face token: set HF_TOKEN=<a write token> or run `hf auth login` "
            "(use --dry-run to see what would be uploaded without one)"
        )
    return token


def upload_plan(folder: Path) -> list[UploadFile]:
    """Files ``upload_folder`` would send (hidden folders such as ``.git`` and ``.cache`` excluded)."""
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts[:-1]):
            continue
        files.append(UploadFile(rel.as_posix(), path.stat().st_size))
    return files


def human_size(n: int) -> str:
    """``1536`` -> ``1.5 KiB``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def describe_plan(files: list[UploadFile], repo_id: str, private: bool, has_token: bool) -> str:
    """The dry-run report: target repository, every file with its size, the total."""
    total = sum(f.size for f in files)
    width = max((len(f.path) for f in files), default=0)
    lines = [
        f"dry run: would upload {len(files)} files ({human_size(total)}) in one commit to "
        f"{endpoint()}/{repo_id} ({'private' if private else 'public unless it already exists'})",
        *(f"  {f.path:<{width}}  {human_size(f.size):>10}" for f in files),
        f"  credentials: {'found' if has_token else 'none found (set HF_TOKEN or run `hf auth login`)'}",
        "nothing was uploaded",
    ]
    return "\n".join(lines)


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def _reason(err: BaseException, token: str) -> str:
    """The error and its causes in one line, without the token."""
    parts, seen = [], set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        first = str(cur).strip().splitlines()[0] if str(cur).strip() else ""
        parts.append(f"{type(cur).__name__}: {first}" if first else type(cur).__name__)
        cur = cur.__cause__ or cur.__context__
    return _scrub(" <- ".join(parts), token)


def _status(err: BaseException) -> int | None:
    cur: BaseException | None = err
    while cur is not None:
        response = getattr(cur, "response", None)
        status = getattr(response, "status_code", None)
        if isinstance(status, int):
            return status
        cur = cur.__cause__ or cur.__context__
    return None


def _is_network(err: BaseException) -> bool:
    """Connection refused/reset, DNS failure or timeout (httpx's TransportError family, by name)."""
    cur: BaseException | None = err
    while cur is not None:
        names = {cls.__name__ for cls in type(cur).__mro__}
        if isinstance(cur, (ConnectionError, TimeoutError)) or names & {"TransportError", "TimeoutException"}:
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def _hub_error(err: Exception, stage: str, repo_id: str, token: str) -> HubError:
    where = f"{endpoint()}/{repo_id}"
    outcome = (
        "the repository was not created or changed"
        if stage == "create_repo"
        else "no commit was made (upload_folder commits all files at once), so nothing was published"
    )
    reason = _reason(err, token)
    status = _status(err)
    if status in (401, 403):
        return HubCredentialsError(
            f"push to {where} refused ({status}) at {stage}: the token lacks write access to {repo_id} "
            f"or is invalid; {outcome}. Details: {reason}"
        )
    if (status is not None and status >= 500) or _is_network(err):
        what = f"the Hub answered {status}" if status else "the Hub could not be reached"
        return HubNetworkError(
            f"push to {where} failed at {stage}: {what}; {outcome}. Rerun the same command to retry "
            f"(check HF_ENDPOINT / the network). Details: {reason}"
        )
    return HubError(f"push to {where} failed at {stage}; {outcome}. Details: {reason}")


def push_folder(
    folder: Path,
    repo_id: str,
    *,
    token: str,
    private: bool = False,
    commit_message: str = "Upload model exported with cs-mage-asr",
) -> str:
    """Create ``repo_id`` if needed and upload ``folder`` in one commit; returns the commit URL."""
    from huggingface_hub import HfApi  # slow to import, as above

    validate_repo_id(repo_id)
    api = HfApi(endpoint=endpoint(), token=token)
    files = upload_plan(folder)
    log.info(
        "pushing %d files (%s) to %s/%s",
        len(files),
        human_size(sum(f.size for f in files)),
        endpoint(),
        repo_id,
    )
    try:
        api.create_repo(repo_id, repo_type="model", private=True if private else None, exist_ok=True)
    except Exception as err:  # httpx, HfHubHTTPError, OSError...: all reported the same way
        raise _hub_error(err, "create_repo", repo_id, token) from None
    try:
        info = api.upload_folder(
            repo_id=repo_id, folder_path=str(folder), repo_type="model", commit_message=commit_message
        )
    except Exception as err:
        raise _hub_error(err, "upload", repo_id, token) from None
    url = str(getattr(info, "commit_url", "") or f"{endpoint()}/{repo_id}")
    log.info("pushed: %s", url)
    return url

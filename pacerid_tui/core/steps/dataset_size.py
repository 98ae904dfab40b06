"""How many training images a Kaggle dataset holds, asked of Kaggle before anything is spent.

The launch form's estimate needs the image count, which for Kaggle data was known only once the
data step had fetched it, on a host that already bills. Kaggle's dataset metadata lists every
file with its size (kagglesdk's DatasetApiClient.list_dataset_files: ApiListDatasetFilesRequest
{ownerSlug, datasetSlug, pageToken}, ApiListDatasetFilesResponse {datasetFiles, nextPageToken}),
so the count comes from there: the images under a `Train` folder, the split the trainer trains on
(trainer/layout.py). Every failure (no kagglesdk, no credentials, no network, a refusal) is
None: the form then says the size is unknown, as it did, and `doctor` says why.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from pacerid_tui.core.steps.credentials import kaggle_credentials
from pacerid_tui.core.steps.doctor import kaggle_session

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
"""What torchvision's ImageFolder reads as images (its IMG_EXTENSIONS, the common ones)."""
MAX_PAGES = 100
"""Pages asked for at most: Kaggle answers a few hundred files a page, and a dataset too large
to list in that many is no pacemaker set."""


@dataclass(frozen=True)
class DatasetSize:
    train_images: int
    total_bytes: int


def size_of(files: Iterable[tuple[str, int]]) -> DatasetSize:
    """The training images (under a folder named Train, any case, as the trainer finds it) and
    the bytes of every file, from (path, bytes) pairs."""
    images = total = 0
    for name, size in files:
        total += size
        path = PurePosixPath(name)
        in_train = any(part.lower() == "train" for part in path.parts[:-1])
        if in_train and path.suffix.lower() in IMAGE_SUFFIXES:
            images += 1
    return DatasetSize(images, total)


def kaggle_size(dataset: str) -> DatasetSize | None:
    """`dataset` (owner/name) as Kaggle lists it, or None when it cannot be asked (blocking:
    call it from a thread)."""
    owner, _, rest = dataset.partition("/")
    slug = rest.split("/")[0]
    if not owner or not slug:
        return None
    try:
        from kagglesdk.datasets.types.dataset_api_service import ApiListDatasetFilesRequest

        files: list[tuple[str, int]] = []
        with kaggle_session(kaggle_credentials()) as client:
            token: str | None = None
            for _ in range(MAX_PAGES):
                request = ApiListDatasetFilesRequest()
                request.owner_slug, request.dataset_slug = owner, slug
                if token:
                    request.page_token = token
                answer = client.datasets.dataset_api_client.list_dataset_files(request)
                files += [(f.name or "", f.total_bytes or 0) for f in answer.dataset_files]
                token = answer.next_page_token
                if not token:
                    break
    except Exception:  # kagglesdk raises plain Exception too; any failure is "unknown"
        return None
    return size_of(files) if files else None

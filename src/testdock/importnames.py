"""The module names a distribution is imported by, guessed without installing it: the name with
dashes as underscores, plus the well-known cases where the two differ (PyYAML is `yaml`)."""

from __future__ import annotations

from collections.abc import Iterable

from testdock.requirements import names

# distribution (canonical name) -> the top-level modules it provides, where they differ from it
KNOWN: dict[str, tuple[str, ...]] = {
    "attrs": ("attr", "attrs"),
    "beautifulsoup4": ("bs4",),
    "dnspython": ("dns",),
    "gitpython": ("git",),
    "google-cloud-storage": ("google",),
    "googleapis-common-protos": ("google",),
    "grpcio": ("grpc",),
    "msgpack-python": ("msgpack",),
    "opencv-python": ("cv2",),
    "opencv-python-headless": ("cv2",),
    "pillow": ("PIL",),
    "protobuf": ("google",),
    "psycopg2-binary": ("psycopg2",),
    "pycryptodome": ("Crypto",),
    "pycryptodomex": ("Cryptodome",),
    "pyjwt": ("jwt",),
    "pymupdf": ("fitz",),
    "pynacl": ("nacl",),
    "pyopenssl": ("OpenSSL",),
    "pyserial": ("serial",),
    "python-dateutil": ("dateutil",),
    "python-dotenv": ("dotenv",),
    "python-magic": ("magic",),
    "python-multipart": ("multipart", "python_multipart"),
    "pytz-deprecation-shim": ("pytz_deprecation_shim",),
    "pyyaml": ("yaml",),
    "pyzmq": ("zmq",),
    "scikit-image": ("skimage",),
    "scikit-learn": ("sklearn",),
    "setuptools": ("setuptools", "pkg_resources"),
    "tensorflow-cpu": ("tensorflow",),
    "typing-extensions": ("typing_extensions",),
}


def import_names(requirements: Iterable[str]) -> list[str]:
    """Sorted top-level module names the requirements' distributions are likely imported by."""
    modules: set[str] = set()
    for name in names(requirements):
        modules.add(name.replace("-", "_"))
        modules.update(KNOWN.get(name, ()))
        if name.startswith("python-"):
            modules.add(name.removeprefix("python-").replace("-", "_"))
    return sorted(modules)

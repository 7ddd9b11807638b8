"""The module names a distribution is imported by, guessed without installing it: the name with
dashes as underscores, plus the well-known cases where the two differ (PyYAML is `yaml`).
Standard library only: the collection image uses it too."""

from __future__ import annotations

import re

# distribution (canonical name) -> the top-level modules it provides, where they differ from it
KNOWN: dict[str, tuple[str, ...]] = {
    "attrs": ("attr", "attrs"),
    "beautifulsoup4": ("bs4",),
    "dm-tree": ("tree",),
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
    "pytest-xdist": ("xdist",),
    "pycryptodome": ("Crypto",),
    "pycryptodomex": ("Cryptodome",),
    "pyjwt": ("jwt",),
    "pymongo": ("pymongo", "bson", "gridfs"),
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
    "websocket-client": ("websocket",),
}


def canonical_name(distribution: str) -> str:
    """A distribution's name as PEP 503 normalises it (`Pydantic_Core` -> `pydantic-core`)."""
    return re.sub(r"[-_.]+", "-", distribution).lower()


def module_names(distribution: str) -> set[str]:
    """The top-level modules a distribution (any spelling of its name) is likely imported by."""
    name = canonical_name(distribution)
    # modules keep their case (netCDF4); a dotted name is a namespace package (zope.interface)
    modules = {name.replace("-", "_"), distribution.replace("-", "_"), distribution.split(".")[0]}
    modules.update(KNOWN.get(name, ()))
    if name.startswith("python-"):
        modules.add(name[len("python-"):].replace("-", "_"))
    if name.startswith("scikit-"):  # the scikits' own convention: scikit-misc is skmisc, scikit-rf skrf
        modules.add("sk" + name[len("scikit-"):].replace("-", ""))
    return modules


def declared_module_names(distribution: str) -> set[str]:
    """module_names, and the first word of the name, for a distribution the project itself
    declares (in its extras or groups): one named after its module and what it does
    (railroad-diagrams: `import railroad`). Never used for names from elsewhere. Type stubs
    (`pandas-stubs`, `types-requests`) provide no module a test imports."""
    words = canonical_name(distribution).split("-")
    if words[-1] == "stubs" or words[0] == "types":
        return set()
    return module_names(distribution) | {words[0]}

"""The gRPC API reference, rendered from the .proto files and their comments.

`grpc_tools.protoc` compiles the files into a descriptor set with source info;
each service, rpc, message, field, enum and enum value is written with the
comment that stands before it in the .proto file.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

from google.protobuf import descriptor_pb2

from docgen.markdown import anchor, table

# Field numbers in descriptor.proto, as they appear in SourceCodeInfo paths.
_FILE_MESSAGE, _FILE_ENUM, _FILE_SERVICE, _FILE_SYNTAX = 4, 5, 6, 12
_MESSAGE_FIELD, _MESSAGE_NESTED, _MESSAGE_ENUM = 2, 3, 4
_ENUM_VALUE = 2
_SERVICE_METHOD = 2

_FIELD = descriptor_pb2.FieldDescriptorProto
_SCALARS = {
    _FIELD.TYPE_DOUBLE: "double",
    _FIELD.TYPE_FLOAT: "float",
    _FIELD.TYPE_INT64: "int64",
    _FIELD.TYPE_UINT64: "uint64",
    _FIELD.TYPE_INT32: "int32",
    _FIELD.TYPE_FIXED64: "fixed64",
    _FIELD.TYPE_FIXED32: "fixed32",
    _FIELD.TYPE_BOOL: "bool",
    _FIELD.TYPE_STRING: "string",
    _FIELD.TYPE_BYTES: "bytes",
    _FIELD.TYPE_UINT32: "uint32",
    _FIELD.TYPE_SFIXED32: "sfixed32",
    _FIELD.TYPE_SFIXED64: "sfixed64",
    _FIELD.TYPE_SINT32: "sint32",
    _FIELD.TYPE_SINT64: "sint64",
}


def compile_descriptors(
    proto_root: Path, files: Sequence[Path]
) -> descriptor_pb2.FileDescriptorSet:
    """Compiles `files` (under `proto_root`) into a descriptor set with comments."""
    well_known = resources.files("grpc_tools") / "_proto"
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "api.pb"
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_root}",
            f"-I{well_known}",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *(str(Path(f).resolve().relative_to(proto_root.resolve())) for f in files),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"protoc failed:\n{done.stderr.strip()}")
        return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def _comments(proto: descriptor_pb2.FileDescriptorProto) -> dict[tuple, str]:
    """Each element's comment by its SourceCodeInfo path."""
    found: dict[tuple, str] = {}
    for location in proto.source_code_info.location:
        parts = [location.leading_comments, location.trailing_comments]
        if tuple(location.path) == (_FILE_SYNTAX,):
            parts = [*location.leading_detached_comments, *parts]
        text = "\n".join(_clean(part) for part in parts if part.strip())
        if text:
            found[tuple(location.path)] = text
    return found


def _clean(comment: str) -> str:
    lines = [line.removeprefix(" ") for line in comment.splitlines()]
    return "\n".join(lines).strip()


class _Renderer:
    def __init__(self, files: Sequence[descriptor_pb2.FileDescriptorProto]) -> None:
        self.anchors: dict[str, str] = {}
        self.map_entries: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.package_prefix = ""
        for proto in files:
            prefix = f".{proto.package}" if proto.package else ""
            for message in proto.message_type:
                self._index_message(f"{prefix}.{message.name}", message)
            for enum in proto.enum_type:
                self.anchors[f"{prefix}.{enum.name}"] = anchor(prefix, enum.name)

    def _index_message(
        self, name: str, message: descriptor_pb2.DescriptorProto
    ) -> None:
        if message.options.map_entry:
            self.map_entries[name] = message
        else:
            self.anchors[name] = anchor(name)
        for nested in message.nested_type:
            self._index_message(f"{name}.{nested.name}", nested)
        for enum in message.enum_type:
            self.anchors[f"{name}.{enum.name}"] = anchor(name, enum.name)

    def type_link(self, full_name: str) -> str:
        short = full_name.rsplit(".", 1)[-1]
        if full_name in self.anchors:
            return f"[{short}](#{self.anchors[full_name]})"
        return f"`{full_name.lstrip('.')}`"

    def field_type(self, field: descriptor_pb2.FieldDescriptorProto) -> str:
        if field.type_name in self.map_entries:
            entry = self.map_entries[field.type_name]
            key, value = (self.field_type(f) for f in entry.field)
            return f"map<{key}, {value}>"
        if field.type in (_FIELD.TYPE_MESSAGE, _FIELD.TYPE_ENUM):
            return self.type_link(field.type_name)
        return f"`{_SCALARS.get(field.type, 'group')}`"

    def file(self, proto: descriptor_pb2.FileDescriptorProto) -> list[str]:
        comments = _comments(proto)
        out = [f"## `{Path(proto.name).name}`", ""]
        if (_FILE_SYNTAX,) in comments:
            out += [comments[(_FILE_SYNTAX,)], ""]
        for i, service in enumerate(proto.service):
            out += self.service(proto, service, (_FILE_SERVICE, i), comments)
        prefix = f".{proto.package}" if proto.package else ""
        self.package_prefix = prefix
        for i, message in enumerate(proto.message_type):
            path = (_FILE_MESSAGE, i)
            out += self.message(f"{prefix}.{message.name}", message, path, comments)
        for i, enum in enumerate(proto.enum_type):
            out += self.enum(f"{prefix}.{enum.name}", enum, (_FILE_ENUM, i), comments)
        return out

    def service(
        self,
        proto: descriptor_pb2.FileDescriptorProto,
        service: descriptor_pb2.ServiceDescriptorProto,
        path: tuple,
        comments: dict[tuple, str],
    ) -> list[str]:
        full = f"{proto.package}.{service.name}" if proto.package else service.name
        out = [f"### Service `{full}`", ""]
        if path in comments:
            out += [comments[path], ""]
        rows = []
        for j, method in enumerate(service.method):
            request = self.type_link(method.input_type)
            response = self.type_link(method.output_type)
            if method.client_streaming:
                request = f"stream {request}"
            if method.server_streaming:
                response = f"stream {response}"
            note = comments.get((*path, _SERVICE_METHOD, j), "")
            rows.append([f"`{method.name}`", request, response, note])
        out += [table(["rpc", "request", "response", "description"], rows), ""]
        return out

    def message(
        self,
        name: str,
        message: descriptor_pb2.DescriptorProto,
        path: tuple,
        comments: dict[tuple, str],
    ) -> list[str]:
        if message.options.map_entry:
            return []
        title = name.removeprefix(self.package_prefix + ".")
        out = [f"### `{title}` {{ #{self.anchors[name]} }}", ""]
        if path in comments:
            out += [comments[path], ""]
        rows = []
        for j, field in enumerate(message.field):
            rows.append(
                [
                    f"`{field.name}`",
                    str(field.number),
                    self.label(message, field) + self.field_type(field),
                    comments.get((*path, _MESSAGE_FIELD, j), ""),
                ]
            )
        if rows:
            out += [table(["field", "number", "type", "description"], rows), ""]
        else:
            out += ["No fields.", ""]
        for k, nested in enumerate(message.nested_type):
            nested_path = (*path, _MESSAGE_NESTED, k)
            out += self.message(f"{name}.{nested.name}", nested, nested_path, comments)
        for k, enum in enumerate(message.enum_type):
            enum_path = (*path, _MESSAGE_ENUM, k)
            out += self.enum(f"{name}.{enum.name}", enum, enum_path, comments)
        return out

    def label(
        self,
        message: descriptor_pb2.DescriptorProto,
        field: descriptor_pb2.FieldDescriptorProto,
    ) -> str:
        if field.type_name in self.map_entries:
            return ""
        if field.label == _FIELD.LABEL_REPEATED:
            return "repeated "
        if field.proto3_optional:
            return "optional "
        if field.HasField("oneof_index"):
            return f"oneof `{message.oneof_decl[field.oneof_index].name}`: "
        return ""

    def enum(
        self,
        name: str,
        enum: descriptor_pb2.EnumDescriptorProto,
        path: tuple,
        comments: dict[tuple, str],
    ) -> list[str]:
        title = name.lstrip(".")
        out = [f"### Enum `{title}` {{ #{self.anchors[name]} }}", ""]
        if path in comments:
            out += [comments[path], ""]
        rows = [
            [f"`{value.name}`", str(value.number), comments.get((*path, 2, j), "")]
            for j, value in enumerate(enum.value)
        ]
        out += [table(["value", "number", "description"], rows), ""]
        return out


def render_api(descriptors: descriptor_pb2.FileDescriptorSet) -> str:
    """Markdown for every file of the set: services first, then messages, enums."""
    files = sorted(descriptors.file, key=_file_order)
    renderer = _Renderer(files)
    out: list[str] = []
    for proto in files:
        out += renderer.file(proto)
    return "\n".join(out).rstrip() + "\n"


def _file_order(proto: descriptor_pb2.FileDescriptorProto) -> tuple[int, str]:
    # Files that define services first, so the page opens with what can be called.
    return (0 if proto.service else 1, proto.name)


def api_markdown(proto_root: Path) -> str:
    """The API reference for every `*.proto` under `proto_root/splitrec/v1`."""
    files = sorted((proto_root / "splitrec" / "v1").glob("*.proto"))
    if not files:
        raise FileNotFoundError(f"no .proto files under {proto_root}/splitrec/v1")
    return render_api(compile_descriptors(proto_root, files))

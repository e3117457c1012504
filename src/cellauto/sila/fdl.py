"""Feature Definition Language (FDL) for cellauto's SiLA 2 features.

cellauto's own features are data kept in ``schemas/sila/*.sila.xml``, rendered from the
compact specifications in `cellauto.sila.features` (``python -m cellauto.sila.features`` rewrites
them; a test fails when they are stale). The channel feature is built per device from its profile:
each channel an observable property with its unit as a SiLA unit constraint.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cellauto.resources import schemas_dir
from cellauto.schema import DeviceProfile
from cellauto.sila.units import to_sila

ORIGINATOR = "org.cellauto"
CATEGORY = "devices"
FEATURE_VERSION = "1.0"
_HEADER = (
    '<Feature xmlns="http://www.sila-standard.org" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" SiLA2Version="1.0" '
    'FeatureVersion="{version}" MaturityLevel="Draft" Originator="{originator}" '
    'Category="{category}" xsi:schemaLocation="http://www.sila-standard.org '
    'https://gitlab.com/SiLA2/sila_base/raw/master/schema/FeatureDefinition.xsd">'
)


def basic(name: str) -> str:
    """A basic type: String, Integer, Real, Boolean, Binary, Date, Time, Timestamp, Any."""
    return f"<Basic>{name}</Basic>"


def list_of(item: str) -> str:
    return f"<List><DataType>{item}</DataType></List>"


def with_unit(code: str, base: str = "Real") -> str:
    """A Real (or Integer) constrained to UCUM unit `code`, as a SiLA unit constraint."""
    unit = to_sila(code).to_xml()
    return (
        f"<Constrained><DataType>{basic(base)}</DataType>"
        f"<Constraints>{unit}</Constraints></Constrained>"
    )


def with_set(values: list[str]) -> str:
    items = "".join(f"<Value>{_escape(v)}</Value>" for v in values)
    return (
        f"<Constrained><DataType>{basic('String')}</DataType>"
        f"<Constraints><Set>{items}</Set></Constraints></Constrained>"
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@dataclass(frozen=True)
class Element:
    """A parameter, response, intermediate response or property field."""

    identifier: str
    description: str
    data_type: str

    def xml(self, tag: str) -> str:
        return (
            f"<{tag}><Identifier>{self.identifier}</Identifier>"
            f"<DisplayName>{display(self.identifier)}</DisplayName>"
            f"<Description>{_escape(self.description)}</Description>"
            f"<DataType>{self.data_type}</DataType></{tag}>"
        )


@dataclass(frozen=True)
class Command:
    identifier: str
    description: str
    observable: bool = False
    parameters: tuple[Element, ...] = ()
    responses: tuple[Element, ...] = ()
    intermediate: tuple[Element, ...] = ()
    errors: tuple[str, ...] = ()

    def xml(self) -> str:
        parts = [
            f"<Command><Identifier>{self.identifier}</Identifier>",
            f"<DisplayName>{display(self.identifier)}</DisplayName>",
            f"<Description>{_escape(self.description)}</Description>",
            f"<Observable>{'Yes' if self.observable else 'No'}</Observable>",
            *(p.xml("Parameter") for p in self.parameters),
            *(r.xml("Response") for r in self.responses),
            *(i.xml("IntermediateResponse") for i in self.intermediate),
        ]
        if self.errors:
            ids = "".join(f"<Identifier>{e}</Identifier>" for e in self.errors)
            parts.append(f"<DefinedExecutionErrors>{ids}</DefinedExecutionErrors>")
        parts.append("</Command>")
        return "".join(parts)


@dataclass(frozen=True)
class Property:
    identifier: str
    description: str
    data_type: str
    observable: bool = True

    def xml(self) -> str:
        return (
            f"<Property><Identifier>{self.identifier}</Identifier>"
            f"<DisplayName>{display(self.identifier)}</DisplayName>"
            f"<Description>{_escape(self.description)}</Description>"
            f"<Observable>{'Yes' if self.observable else 'No'}</Observable>"
            f"<DataType>{self.data_type}</DataType></Property>"
        )


@dataclass(frozen=True)
class Feature:
    identifier: str
    description: str
    commands: tuple[Command, ...] = ()
    properties: tuple[Property, ...] = ()
    errors: dict[str, str] = field(default_factory=dict)
    originator: str = ORIGINATOR
    category: str = CATEGORY

    @property
    def qualified(self) -> str:
        """The fully qualified feature identifier (``org.cellauto/devices/Name/v1``)."""
        return f"{self.originator}/{self.category}/{self.identifier}/v{FEATURE_VERSION[0]}"

    def xml(self) -> str:
        """The feature's FDL document, one element a line."""
        head = _HEADER.format(
            version=FEATURE_VERSION, originator=self.originator, category=self.category
        )
        body = [
            f"<Identifier>{self.identifier}</Identifier>",
            f"<DisplayName>{display(self.identifier)}</DisplayName>",
            f"<Description>{_escape(self.description)}</Description>",
            *(c.xml() for c in self.commands),
            *(p.xml() for p in self.properties),
            *(
                f"<DefinedExecutionError><Identifier>{name}</Identifier>"
                f"<DisplayName>{display(name)}</DisplayName>"
                f"<Description>{_escape(text)}</Description></DefinedExecutionError>"
                for name, text in self.errors.items()
            ),
        ]
        return head + "\n" + "\n".join(f"  {line}" for line in body) + "\n</Feature>\n"


def display(identifier: str) -> str:
    """``RunProgram`` -> ``Run Program`` (SiLA display names)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", identifier)


def identifier(channel: str) -> str:
    """A SiLA identifier for cellauto name `channel` (``culture.temperature`` ->
    ``CultureTemperature``)."""
    words = re.split(r"[^A-Za-z0-9]+", channel)
    name = "".join(w[:1].upper() + w[1:] for w in words if w)
    return name if name[:1].isalpha() else f"C{name}"


def channel_feature(profile: DeviceProfile) -> tuple[Feature, dict[str, str]]:
    """The ``<Device>Channels`` feature of `profile` (one observable property per channel, its
    unit as a unit constraint, its choices as a set constraint) and identifier -> channel."""
    properties, names = [], {}
    for name, spec in profile.channels().items():
        ident = identifier(name)
        if spec.dtype in ("float", "int"):
            data_type = with_unit(spec.unit or "1", "Real" if spec.dtype == "float" else "Integer")
        elif spec.dtype == "bool":
            data_type = basic("Boolean")
        elif spec.choices:
            data_type = with_set([str(c) for c in spec.choices])
        else:
            data_type = basic("String")
        properties.append(Property(ident, f"{name}: {spec.description}", data_type))
        names[ident] = name
    feature = Feature(
        channels_identifier(profile.device),
        f"The channels of {profile.manufacturer} {profile.model} (profile "
        f"{profile.device} {profile.profile_version}), each an observable property in its unit.",
        properties=tuple(properties),
    )
    return feature, names


def channels_identifier(device: str) -> str:
    """The channel feature's identifier for device kind `device` (``LicellgrowChannels``): one
    name per kind, since the library compiles each feature into one process-wide registry."""
    return f"{identifier(device)}Channels"


def feature_dir() -> Path:
    """Where cellauto's FDL files are kept: ``schemas/sila/``."""
    return schemas_dir() / "sila"


def load_feature(name: str) -> str:
    """The FDL text of cellauto feature `name` (``ProgramController``)."""
    return (feature_dir() / f"{name}.sila.xml").read_text(encoding="utf-8")

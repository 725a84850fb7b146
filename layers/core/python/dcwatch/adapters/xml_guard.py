"""vCenter's answers are untrusted XML: parsed with defusedxml's refusals in front of pyVmomi's expat parser.

A SOAP message carries no DTD (SOAP 1.1, section 3), so an answer with one is refused before expat reads any
entity: no billion laughs, no external entity, no entity quietly changing a value. pyVmomi makes its parsers
with `ParserCreate` imported into `pyVmomi.SoapAdapter`; `install()` replaces that one name with a maker that
adds defusedxml's handlers, without forking pyVmomi. pyVmomi sets only the element, text and namespace
handlers after, so the refusals stay.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from xml.etree.ElementTree import Element
from xml.parsers import expat

from defusedxml import ElementTree as DefusedElementTree
from defusedxml.common import DefusedXmlException
from defusedxml.expatbuilder import DefusedExpatBuilder

from dcwatch.errors import VcenterRefused
from dcwatch.observability import logger

_DEFUSED = DefusedExpatBuilder(forbid_dtd=True, forbid_entities=True, forbid_external=True)


def refused(exc: DefusedXmlException) -> VcenterRefused:
    """What a refused answer is: vCenter (or what stands for it) answered something we will not read."""
    logger.warning("vCenter XML refused", reason=str(exc), refusal=type(exc).__name__)
    return VcenterRefused(f"vCenter answered XML defusedxml refuses ({type(exc).__name__}: {exc}); nothing was read")


def _refusing(handler: Callable[..., Any]) -> Callable[..., Any]:
    def refuse(*args: Any) -> None:
        try:
            handler(*args)
        except DefusedXmlException as exc:
            raise refused(exc) from None

    return refuse


def defused_parser(*args: Any, **kwargs: Any) -> Any:
    """`expat.ParserCreate` with defusedxml's refusals of DTDs, entity declarations and external references."""
    parser = expat.ParserCreate(*args, **kwargs)
    parser.StartDoctypeDeclHandler = _refusing(_DEFUSED.defused_start_doctype_decl)
    parser.EntityDeclHandler = _refusing(_DEFUSED.defused_entity_decl)
    parser.UnparsedEntityDeclHandler = _refusing(_DEFUSED.defused_unparsed_entity_decl)
    parser.ExternalEntityRefHandler = _refusing(_DEFUSED.defused_external_entity_ref_handler)
    return parser


def install() -> None:
    """Every SOAP answer pyVmomi parses from now on goes through `defused_parser`."""
    from pyVmomi import SoapAdapter

    SoapAdapter.ParserCreate = defused_parser  # type: ignore[attr-defined]


def element(document: bytes) -> Element:
    """A small XML document of vCenter's (`vimServiceVersions.xml`), refused as SOAP answers are.

    xml.etree's ParseError for what is not XML at all."""
    try:
        return DefusedElementTree.fromstring(document, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise refused(exc) from None

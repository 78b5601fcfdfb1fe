"""Slicer modifier meshes in a 3MF (Cura's per-object mesh types; PrusaSlicer's, Bambu Studio's and
OrcaSlicer's modifier volumes, negative volumes, support blockers and enforcers) are not printed
material: they are left out of the size, volume, weight and cost, and counted for the page.

The archives are laid out as each slicer writes them: Cura's from a real Cura 4.4.1 project (the
fixture) with one modifier object added the way Cura stores it, PrusaSlicer's single mesh per object
with triangle ranges in Metadata/Slic3r_PE_model.config, and Bambu Studio's / OrcaSlicer's
components in 3D/Objects/ with their part types in Metadata/model_settings.config.
"""

from __future__ import annotations

import html
import re
import zipfile
from pathlib import Path

import pytest
import trimesh
from sqlalchemy import select

from printlab.domain.catalog import DEFAULT_CATALOG
from printlab.models import AnalysisState, Job, Task
from printlab.services.files import model_analysis
from printlab.services.files.analysis import Analysis, analyse

from .conftest import MODELS
from .factories import submit_job
from .test_staff_pages import staff_client, staffed  # noqa: F401  (fixtures)

CORE = "http://schemas.microsoft.com/3dmanufacturing/core/2015/02"
PRODUCTION = "http://schemas.microsoft.com/3dmanufacturing/production/2015/06"
CURA_PROJECT = MODELS / "3mf_cura_4.4.1_HTV_engine_7_items.3mf"
CURA_VOLUME = 115.11  # the manifest's volume of the seven engine parts


def box(size: tuple[float, float, float], at: tuple[float, float, float] = (0, 0, 0)) -> trimesh.Trimesh:
    """A closed box with its low corner at `at`."""
    mesh = trimesh.creation.box(extents=size)
    mesh.apply_translation([at[i] + size[i] / 2 for i in range(3)])
    return mesh


def mesh_xml(*meshes: trimesh.Trimesh) -> str:
    """One <mesh> holding every mesh's triangles in order (PrusaSlicer's object layout)."""
    vertices, triangles, offset = [], [], 0
    for mesh in meshes:
        vertices += [f'     <vertex x="{x:.6g}" y="{y:.6g}" z="{z:.6g}"/>' for x, y, z in mesh.vertices]
        triangles += [
            f'     <triangle v1="{a + offset}" v2="{b + offset}" v3="{c + offset}"/>'
            for a, b, c in mesh.faces
        ]
        offset += len(mesh.vertices)
    return (
        "   <mesh>\n    <vertices>\n"
        + "\n".join(vertices)
        + "\n    </vertices>\n    <triangles>\n"
        + "\n".join(triangles)
        + "\n    </triangles>\n   </mesh>\n"
    )


def write_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="model" ContentType="application/vnd.ms-package.3dmanufacturing-3dmodel+xml"/>'
    '<Default Extension="png" ContentType="image/png"/></Types>'
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Target="/3D/3dmodel.model" Id="rel-1" '
    'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/></Relationships>'
)


def analyse_3mf(path: Path) -> Analysis:
    return analyse(path, ".3mf", catalog=DEFAULT_CATALOG, method="Filament", printer="Prusa MK4S")


# -- Cura ----------------------------------------------------------------------------------------


def cura_with_modifier(tmp_path: Path, setting: str, value: str = "True") -> Path:
    """The real Cura 4.4.1 project with a 40 mm box added as Cura writes a per-model mesh type."""
    with zipfile.ZipFile(CURA_PROJECT) as original:
        members = {info.filename: original.read(info.filename) for info in original.infolist()}
    model = members["3D/3dmodel.model"].decode()
    modifier = (
        '\t\t<object id="8" name="Cube" type="model">\n'
        "\t\t\t<metadatagroup>\n"
        f'\t\t\t\t<metadata name="cura:{setting}" preserve="true" type="xs:string">{value}</metadata>\n'
        '\t\t\t\t<metadata name="cura:extruder_nr" preserve="true" type="xs:string">0</metadata>\n'
        "\t\t\t</metadatagroup>\n"
        + mesh_xml(box((40, 40, 40), (-20, -20, -20)))
        + "\t\t</object>\n\t</resources>"
    )
    model = model.replace("</resources>", modifier, 1)
    model = model.replace(
        "</build>", '<item objectid="8" transform="1 0 0 0 1 0 0 0 1 110 110 20" /></build>', 1
    )
    members["3D/3dmodel.model"] = model.encode()
    return write_zip(tmp_path / f"cura_{setting}.3mf", members)


def test_the_real_cura_project_has_no_modifiers() -> None:
    result = analyse_3mf(CURA_PROJECT)
    assert result.modifier_parts == 0
    assert result.volume_mm3 == pytest.approx(CURA_VOLUME, abs=0.01)


@pytest.mark.parametrize("setting", ["anti_overhang_mesh", "support_mesh", "infill_mesh", "cutting_mesh"])
def test_cura_mesh_types_are_not_printed_material(tmp_path: Path, setting: str) -> None:
    result = analyse_3mf(cura_with_modifier(tmp_path, setting))
    assert result.modifier_parts == 1
    assert result.volume_mm3 == pytest.approx(CURA_VOLUME, abs=0.01)  # not + 64,000 mm³ of box
    assert result.extents_mm == pytest.approx((19.18, 21.18, 10.05), abs=0.01)
    assert result.triangles == 18788
    plain = analyse_3mf(CURA_PROJECT)
    assert result.weight_range_g == plain.weight_range_g and result.cost_range_usd == plain.cost_range_usd


def test_a_cura_mesh_type_switched_off_is_printed(tmp_path: Path) -> None:
    result = analyse_3mf(cura_with_modifier(tmp_path, "anti_overhang_mesh", "False"))
    assert result.modifier_parts == 0
    assert result.volume_mm3 == pytest.approx(CURA_VOLUME + 64_000, abs=0.5)


# -- PrusaSlicer ---------------------------------------------------------------------------------


def prusa_project(tmp_path: Path, volumes: list[tuple[str, str | None]]) -> Path:
    """One PrusaSlicer object: a 20 mm body cube, then one 10 mm cube per extra volume, all in one
    <mesh>; `volumes` gives each extra volume's (volume_type, legacy `modifier` value)."""
    meshes = [box((20, 20, 20))] + [box((10, 10, 10), (15, 15, 15 + 12 * i)) for i in range(len(volumes))]
    config = ['<?xml version="1.0" encoding="utf-8"?>', "<config>", ' <object id="1" instances_count="1">']
    config.append('  <metadata type="object" key="name" value="body.stl"/>')
    first = 0
    for mesh, (volume_type, modifier) in zip(meshes, [("ModelPart", None), *volumes], strict=True):
        last = first + len(mesh.faces) - 1
        config.append(f'  <volume firstid="{first}" lastid="{last}">')
        config.append(f'   <metadata type="volume" key="name" value="{volume_type.lower()}"/>')
        if modifier is not None:
            config.append(f'   <metadata type="volume" key="modifier" value="{modifier}"/>')
        if volume_type:
            config.append(f'   <metadata type="volume" key="volume_type" value="{volume_type}"/>')
        config.append('   <metadata type="volume" key="matrix" value="1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1"/>')
        config.append('   <metadata type="volume" key="source_file" value="body.stl"/>')
        if volume_type == "ParameterModifier":
            config.append('   <metadata type="volume" key="fill_density" value="100%"/>')
        config.append(
            '   <mesh edges_fixed="0" degenerate_facets="0" facets_removed="0" facets_reversed="0" backwards_edges="0"/>'
        )
        config.append("  </volume>")
        first = last + 1
    config += [" </object>", "</config>"]
    model = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<model unit="millimeter" xml:lang="en-US" xmlns="{CORE}" '
        'xmlns:slic3rpe="http://schemas.slic3r.org/3mf/2017/06">\n'
        ' <metadata name="slic3rpe:Version3mf">1</metadata>\n'
        ' <metadata name="Application">PrusaSlicer-2.6.1+win64</metadata>\n'
        ' <resources>\n  <object id="1" type="model">\n' + mesh_xml(*meshes) + "  </object>\n </resources>\n"
        ' <build>\n  <item objectid="1" transform="1 0 0 0 1 0 0 0 1 115 95 0" printable="1"/>\n </build>\n</model>\n'
    )
    return write_zip(
        tmp_path / "prusa.3mf",
        {
            "[Content_Types].xml": CONTENT_TYPES,
            "_rels/.rels": RELS,
            "3D/3dmodel.model": model,
            "Metadata/Slic3r_PE.config": "; generated by PrusaSlicer 2.6.1+win64 on 2026-11-30 at 10:12:03 UTC\n",
            "Metadata/Slic3r_PE_model.config": "\n".join(config) + "\n",
        },
    )


@pytest.mark.parametrize(
    "volume",
    [
        ("ParameterModifier", "1"),
        ("NegativeVolume", None),
        ("SupportBlocker", None),
        ("SupportEnforcer", None),
        ("", "1"),  # Slic3r PE 1.41 wrote only the `modifier` flag
    ],
)
def test_prusaslicer_modifier_volumes_are_not_printed_material(
    tmp_path: Path, volume: tuple[str, str | None]
) -> None:
    result = analyse_3mf(prusa_project(tmp_path, [volume]))
    assert result.modifier_parts == 1
    assert result.volume_mm3 == pytest.approx(8000)
    assert result.extents_mm == pytest.approx((20, 20, 20))
    assert result.triangles == 12


def test_prusaslicer_parts_are_printed_and_every_modifier_counted(tmp_path: Path) -> None:
    volumes = [("ModelPart", None), ("SupportBlocker", None), ("ParameterModifier", "1")]
    result = analyse_3mf(prusa_project(tmp_path, volumes))
    assert result.modifier_parts == 2
    assert result.volume_mm3 == pytest.approx(8000 + 1000)  # the second part is printed


# -- Bambu Studio and OrcaSlicer -------------------------------------------------------------------


def bambu_project(tmp_path: Path, subtypes: list[str], application: str = "BambuStudio-01.09.07.52") -> Path:
    """One object (id 3 here, as Bambu numbers its parents after their parts) whose parts live in
    3D/Objects/object_1.model: a 20 mm body (part 1) and one 10 mm cube per extra subtype."""
    meshes = [box((20, 20, 20))] + [box((10, 10, 10), (15, 15, 15 + 12 * i)) for i in range(len(subtypes))]
    parent = len(meshes) + 1
    objects = "".join(
        f'  <object id="{n}" p:UUID="0001000{n}-81cb-4c03-9d28-80fed5dfa1dc" type="model">\n{mesh_xml(mesh)}  </object>\n'
        for n, mesh in enumerate(meshes, start=1)
    )
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<model unit="millimeter" xml:lang="en-US" xmlns="{CORE}" '
        f'xmlns:BambuStudio="http://schemas.bambulab.com/package/2021" xmlns:p="{PRODUCTION}" requiredextensions="p">\n'
    )
    part_model = (
        head
        + ' <metadata name="BambuStudio:3mfVersion">1</metadata>\n <resources>\n'
        + objects
        + " </resources>\n <build/>\n</model>\n"
    )
    components = "".join(
        f'    <component p:path="/3D/Objects/object_1.model" objectid="{n}" '
        f'p:UUID="0001000{n}-b206-40ff-9872-83e8017abed1" transform="1 0 0 0 1 0 0 0 1 0 0 0"/>\n'
        for n in range(1, len(meshes) + 1)
    )
    root = (
        head + f' <metadata name="Application">{application}</metadata>\n'
        ' <metadata name="BambuStudio:3mfVersion">1</metadata>\n <resources>\n'
        f'  <object id="{parent}" p:UUID="00000001-61cb-4c03-9d28-80fed5dfa1dc" type="model">\n'
        f"   <components>\n{components}   </components>\n  </object>\n </resources>\n"
        ' <build p:UUID="2c7c17d8-22b5-4d84-8835-1976022ea369">\n'
        f'  <item objectid="{parent}" p:UUID="00000002-b1ec-4553-aec9-835e5b724bb4" '
        'transform="1 0 0 0 1 0 0 0 1 118 118 10" printable="1"/>\n </build>\n</model>\n'
    )
    parts = "".join(
        f'    <part id="{n}" subtype="{subtype}">\n'
        f'      <metadata key="name" value="{subtype}"/>\n'
        '      <metadata key="matrix" value="1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1"/>\n'
        '      <mesh_stat edges_fixed="0" degenerate_facets="0" facets_removed="0" facets_reversed="0" backwards_edges="0"/>\n'
        "    </part>\n"
        for n, subtype in enumerate(["normal_part", *subtypes], start=1)
    )
    settings = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<config>\n'
        f'  <object id="{parent}">\n    <metadata key="name" value="body.stl"/>\n'
        '    <metadata key="extruder" value="1"/>\n' + parts + "  </object>\n"
        '  <plate>\n    <metadata key="plater_id" value="1"/>\n    <model_instance>\n'
        f'      <metadata key="object_id" value="{parent}"/>\n      <metadata key="instance_id" value="0"/>\n'
        "    </model_instance>\n  </plate>\n"
        f'  <assemble>\n   <assemble_item object_id="{parent}" instance_id="0" '
        'transform="1 0 0 0 1 0 0 0 1 118 118 10" offset="0 0 0" />\n  </assemble>\n</config>\n'
    )
    return write_zip(
        tmp_path / "bambu.3mf",
        {
            "[Content_Types].xml": CONTENT_TYPES,
            "_rels/.rels": RELS,
            "3D/3dmodel.model": root,
            "3D/_rels/3dmodel.model.rels": (
                '<?xml version="1.0" encoding="UTF-8"?>\n'
                '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">\n'
                ' <Relationship Target="/3D/Objects/object_1.model" Id="rel-1" '
                'Type="http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel"/>\n</Relationships>\n'
            ),
            "3D/Objects/object_1.model": part_model,
            "Metadata/model_settings.config": settings,
        },
    )


@pytest.mark.parametrize("subtype", ["modifier_part", "negative_part", "support_blocker", "support_enforcer"])
@pytest.mark.parametrize("application", ["BambuStudio-01.09.07.52", "OrcaSlicer-2.1.1"])
def test_bambu_and_orca_modifier_parts_are_not_printed_material(
    tmp_path: Path, subtype: str, application: str
) -> None:
    result = analyse_3mf(bambu_project(tmp_path, [subtype], application))
    assert result.modifier_parts == 1
    assert result.volume_mm3 == pytest.approx(8000)
    assert result.extents_mm == pytest.approx((20, 20, 20))


def test_bambu_normal_parts_are_printed(tmp_path: Path) -> None:
    result = analyse_3mf(bambu_project(tmp_path, ["normal_part", "support_blocker", "modifier_part"]))
    assert result.modifier_parts == 2
    assert result.volume_mm3 == pytest.approx(9000)


def test_a_project_of_modifiers_only_has_nothing_to_print(tmp_path: Path) -> None:
    path = cura_with_modifier(tmp_path, "support_mesh")
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    model = members["3D/3dmodel.model"].decode()
    model = re.sub(r'<item objectid="[1-7]"[^>]*/>', "", model)
    members["3D/3dmodel.model"] = model.encode()
    from printlab.services.files.meshes import AnalysisFailed

    with pytest.raises(AnalysisFailed, match="no objects on its build plate"):
        analyse_3mf(write_zip(tmp_path / "only.3mf", members))


# -- declared units and modifiers through the analysis task and the pages ----------------------------


def text(response) -> str:  # type: ignore[no-untyped-def]
    """The page's words, tags dropped and spaces collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.get_data(as_text=True))).split())


def run_analysis(session, storage, job: Job) -> dict:  # type: ignore[no-untyped-def]
    task = session.scalars(select(Task).where(Task.job_id == job.id)).one()
    model_analysis.run(session, storage, task)
    session.expire_all()
    analysis = session.get(Job, job.id).analysis
    assert analysis.state == AnalysisState.DONE, analysis.error
    return analysis.results


def test_the_job_page_says_how_many_modifier_parts_were_left_out(staff_client, session, storage, tmp_path):  # noqa: F811
    job = submit_job(session, storage, cura_with_modifier(tmp_path, "anti_overhang_mesh"))
    results = run_analysis(session, storage, job)
    assert results["modifier_parts"] == 1
    assert results["volume_mm3"] == pytest.approx(CURA_VOLUME, abs=0.01)
    page = text(staff_client.get(f"/jobs/{job.id}"))
    assert "1 slicer modifier part (support blockers, infill and other modifiers aren't printed" in page
    assert "Drawn in millimetres" in page
    assert "115.1 mm³" in page


def test_the_job_page_says_a_3mf_was_drawn_in_inches(staff_client, session, storage):  # noqa: F811
    job = submit_job(session, storage, MODELS / "3mf_inch_featuretype.3MF")
    results = run_analysis(session, storage, job)
    assert results["file_units"] == "inch" and results["modifier_parts"] == 0
    page = text(staff_client.get(f"/jobs/{job.id}"))
    assert "Drawn in inches, converted to mm" in page
    assert "127 × 63.5 × 34.9 mm" in page
    assert "Left out" not in page


def test_an_analysis_stored_before_modifiers_were_counted_still_reads() -> None:
    stored = analyse_3mf(CURA_PROJECT).to_dict()
    del stored["modifier_parts"]
    assert Analysis.from_dict(stored).modifier_parts == 0

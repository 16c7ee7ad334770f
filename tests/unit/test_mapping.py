from pathlib import Path

import pytest

from core.mapping import MappingError, fingerprint
from core.toml_specs import SpecError
from flows.specs import load_mapping

MATERIAL = {
    "FMATERIALID": 100001, "FNUMBER": "1.01.0001", "FDOCUMENTSTATUS": "C", "FFORBIDSTATUS": "A",
    "texts": [{"FLOCALEID": 1033, "FNAME": "Laryngeal mask"}, {"FLOCALEID": 2052, "FNAME": "一次性使用喉罩",
                                                                "FSPECIFICATION": "成人 4#"}],
    "group_name": "麻醉耗材", "base_unit_name": "个",
}


def test_material_maps_to_a_crm_product() -> None:
    product = load_mapping("materials").to_target(MATERIAL)
    assert product == {
        "Kingdee_ID": "100001", "Product_Code": "1.01.0001", "Kingdee_Number": "1.01.0001",
        "Product_Name": "一次性使用喉罩", "Specification": "成人 4#", "Product_Category": "麻醉耗材",
        "Usage_Unit": "个", "Product_Active": True, "Kingdee_Deleted": False,
    }


def test_disabled_material_is_inactive_and_deleted_is_marked() -> None:
    mapping = load_mapping("materials")
    assert mapping.to_target({**MATERIAL, "FFORBIDSTATUS": "B"})["Product_Active"] is False
    assert mapping.deleted_target("100001") == {"Kingdee_ID": "100001", "Product_Active": False,
                                                "Kingdee_Deleted": True}


def test_only_audited_materials_apply() -> None:
    mapping = load_mapping("materials")
    assert mapping.applies_to(MATERIAL)
    assert not mapping.applies_to({**MATERIAL, "FDOCUMENTSTATUS": "B"})


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"texts": [{"FLOCALEID": 2052, "FNAME": "长" * 121}]}, "Product_Name: 121 characters"),
        ({"texts": [{"FLOCALEID": 2052, "FNAME": " "}]}, "Product_Name: required"),
        ({"FFORBIDSTATUS": "X"}, "unknown code 'X'"),
        ({"FNUMBER": "1.01/0001 坏"}, "does not match"),
        ({"texts": [{"FLOCALEID": 2052, "FNAME": "喉罩\x00"}]}, "control character '\\x00'"),
        ({"texts": [{"FLOCALEID": 2052, "FNAME": "喉罩\t4#"}]}, "control character '\\t' in texts[FLOCALEID=2052]"
                                                                  ".FNAME (a single-line text"),
        ({"texts": [{"FLOCALEID": 2052, "FNAME": "喉罩", "FSPECIFICATION": "成人\n4#"}]}, "Specification: control"),
        ({"FMATERIALGROUP": 9999, "group_name": None}, "Product_Category: FMATERIALGROUP = 9999 names no "
                                                       "material_group in Kingdee"),
        ({"FBASEUNITID": 10101, "base_unit_name": None}, "Usage_Unit: FBASEUNITID = 10101 names no unit"),
    ],
)
def test_bad_values_are_permanent_errors_naming_the_field(change: dict, needle: str) -> None:
    with pytest.raises(MappingError) as info:
        load_mapping("materials").to_target({**MATERIAL, **change})
    assert needle in str(info.value)


def test_a_material_without_a_group_is_fine_and_a_description_may_have_lines() -> None:
    mapping = load_mapping("materials")
    product = mapping.to_target({**MATERIAL, "FMATERIALGROUP": 0, "group_name": None})
    assert product["Product_Category"] is None
    texts = [{"FLOCALEID": 2052, "FNAME": "喉罩", "FDESCRIPTION": "第一行\n第二行\t备注"}]
    assert mapping.crm_fields({"Description": "第一行\n第二行"}) == {"Description": "第一行\n第二行"}
    assert "Description" not in mapping.to_target({**MATERIAL, "texts": texts}), "owned by the CRM"


def test_a_customer_type_that_names_nothing_is_an_error_naming_it() -> None:
    mapping = load_mapping("customers")
    customer = {"FCUSTID": 1, "FNUMBER": "C001", "FDOCUMENTSTATUS": "C", "FFORBIDSTATUS": "A",
                "texts": [{"FLOCALEID": 2052, "FNAME": "协和医院"}], "FCUSTTYPEID": "5f3a", "type_number": None}
    with pytest.raises(MappingError, match="Customer_Type: FCUSTTYPEID = 5f3a names no customer_type"):
        mapping.to_target(customer)


def test_a_mapping_showing_a_reference_must_declare_it(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text('[source]\ndocument="material"\n[target]\nsystem="zoho"\nmodule="Products"\n'
                                     'external_key="K"\n[fields.K]\nfrom="FMATERIALID"\n'
                                     '[fields.Unit]\nfrom="base_unit_name"\n', encoding="utf-8")
    with pytest.raises(SpecError, match='declare it as reference = { via = "FBASEUNITID"'):
        load_mapping("m", tmp_path)


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert fingerprint({"a": 1, "b": "喉罩"}) == fingerprint({"b": "喉罩", "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_a_wrong_mapping_file_fails_at_start_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[target]\nsystem="zoho"\nmodule="Products"\nexternal_key="K"\n'
                                       '[fields.K]\nfrom="a[b=c"\n', encoding="utf-8")
    with pytest.raises(SpecError, match=r"fields.K.from"):
        load_mapping("bad", tmp_path)
    (tmp_path / "nokey.toml").write_text('[target]\nsystem="zoho"\nmodule="Products"\nexternal_key="K"\n'
                                         '[fields.X]\nfrom="a"\n', encoding="utf-8")
    with pytest.raises(SpecError, match="external key K"):
        load_mapping("nokey", tmp_path)


def test_only_crm_owned_and_shared_fields_flow_back_as_kingdee_save_fields() -> None:
    mapping = load_mapping("materials")
    crm = {"Kingdee_ID": "100001", "Product_Name": " 喉罩（加强型） ", "Description": "适用于成人",
           "Product_Code": "HAND", "Product_Active": False}
    fields = mapping.crm_fields(crm)
    assert fields == {"Product_Name": "喉罩（加强型）", "Description": "适用于成人"}
    assert mapping.kingdee_model(fields) == {"FName": "喉罩（加强型）", "FDescription": "适用于成人"}
    assert mapping.kingdee_owned(crm) == {"Product_Code": "HAND", "Product_Active": False}
    assert mapping.shared_fields == {"Product_Name", "Specification"}


def test_the_forward_direction_never_sends_a_crm_owned_field() -> None:
    assert "Description" not in load_mapping("materials").to_target({**MATERIAL, "texts": [
        {"FLOCALEID": 2052, "FNAME": "喉罩", "FDESCRIPTION": "Kingdee 的描述"}]})


def test_a_field_flowing_back_needs_a_kingdee_field_and_a_target_form(tmp_path: Path) -> None:
    head = '[target]\nsystem="zoho"\nmodule="Products"\nexternal_key="K"\n[fields.K]\nfrom="a"\n'
    (tmp_path / "noform.toml").write_text(head + '[fields.N]\nfrom="b"\nowner="crm"\nkingdee_field="FName"\n',
                                          encoding="utf-8")
    with pytest.raises(SpecError, match="form_id and id_field"):
        load_mapping("noform", tmp_path)
    (tmp_path / "nofield.toml").write_text(head + '[fields.N]\nfrom="b"\nowner="shared"\n', encoding="utf-8")
    with pytest.raises(SpecError, match="names no kingdee_field"):
        load_mapping("nofield", tmp_path)


def test_a_crm_edit_with_a_control_character_in_a_single_line_field_is_refused() -> None:
    mapping = load_mapping("materials")
    with pytest.raises(MappingError, match="Product_Name: control character '\\\\t'"):
        mapping.crm_fields({"Product_Name": "喉罩\t4#"})
    assert mapping.crm_fields({"Description": "两行\n说明"}) == {"Description": "两行\n说明"}


def test_every_control_character_is_refused_and_nothing_else() -> None:
    """The check runs in C (a character class): every code point below 32 and 127 is refused in a single-line
    field, tabs and line breaks are allowed in a multi-line one, and no other character is refused."""
    mapping = load_mapping("materials")
    for code in [*range(0, 0x300), 0x2028, 0x3000, 0xFEFF, 0x1F600]:
        ch = chr(code)
        control = code < 32 or code == 127
        name = {**MATERIAL, "texts": [{"FLOCALEID": 2052, "FNAME": f"喉罩{ch}4#"}]}
        if control:
            with pytest.raises(MappingError, match="control character"):
                mapping.to_target(name)
        else:
            assert mapping.to_target(name)["Product_Name"] == f"喉罩{ch}4#".strip()
        line_break = ch in "\t\n\r"
        if control and not line_break:
            with pytest.raises(MappingError, match="control character"):
                mapping.crm_fields({"Description": f"两行{ch}说明"})
        else:
            assert mapping.crm_fields({"Description": f"两行{ch}说明"}) == {"Description": f"两行{ch}说明"}

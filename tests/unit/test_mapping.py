from pathlib import Path

import pytest

from flows.mapping import MappingConfigError, MappingError, fingerprint, load_mapping

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
        ({"texts": [{"FLOCALEID": 2052, "FNAME": "喉罩\x00"}]}, "control characters"),
    ],
)
def test_bad_values_are_permanent_errors_naming_the_field(change: dict, needle: str) -> None:
    with pytest.raises(MappingError) as info:
        load_mapping("materials").to_target({**MATERIAL, **change})
    assert needle in str(info.value)


def test_fingerprint_ignores_key_order_but_not_values() -> None:
    assert fingerprint({"a": 1, "b": "喉罩"}) == fingerprint({"b": "喉罩", "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": 2})


def test_a_wrong_mapping_file_fails_at_start_naming_the_field(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('[target]\nsystem="zoho"\nmodule="Products"\nexternal_key="K"\n'
                                       '[fields.K]\nfrom="a[b=c"\n', encoding="utf-8")
    with pytest.raises(MappingConfigError, match=r"fields.K.from"):
        load_mapping("bad", tmp_path)
    (tmp_path / "nokey.toml").write_text('[target]\nsystem="zoho"\nmodule="Products"\nexternal_key="K"\n'
                                         '[fields.X]\nfrom="a"\n', encoding="utf-8")
    with pytest.raises(MappingConfigError, match="external key K"):
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
    with pytest.raises(MappingConfigError, match="form_id and id_field"):
        load_mapping("noform", tmp_path)
    (tmp_path / "nofield.toml").write_text(head + '[fields.N]\nfrom="b"\nowner="shared"\n', encoding="utf-8")
    with pytest.raises(MappingConfigError, match="names no kingdee_field"):
        load_mapping("nofield", tmp_path)

"""One WebAPI call from decoded request to answer: authentication, then the service, in the real shapes.

``handle`` is synchronous (it talks to PostgreSQL); the app runs it in a worker thread. It returns the JSON to
send and, for logins, the session to set as cookies. Problems become the WebAPI's envelopes, never exceptions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from connectors.kingdee import models as m
from infra.simulators.kingdee import envelope as env
from infra.simulators.kingdee.account_forms import LENIENT, AccountForms
from infra.simulators.kingdee.auth import Authenticator, Caller, LoginFailed, SignatureRejected
from infra.simulators.kingdee.business_info import business_info
from infra.simulators.kingdee.forms import FormDef, form_by_id
from infra.simulators.kingdee.model_input import SaveOptions
from infra.simulators.kingdee.push import Pusher
from infra.simulators.kingdee.query import BillQuery, QueryPlan
from infra.simulators.kingdee.save import DocumentWriter
from infra.simulators.kingdee.status_ops import RULES, StatusOperations
from infra.simulators.kingdee.transport import ServiceCall, form_and_data, login_params
from infra.simulators.kingdee.values import to_json
from infra.simulators.kingdee.view import DocumentViewer

QUERY_METHODS = ("executebillquery", "billquery")
MAX_BATCH = 10_000


@dataclass
class Request:
    call: ServiceCall
    body: Any
    path: str
    headers: Any
    cookies: dict[str, str]


@dataclass
class Answer:
    payload: Any
    session_id: str | None = None  # set by a successful login
    notes: dict[str, Any] = field(default_factory=dict)


def login_answer(caller: Caller | None, message: str | None, acct_name: str = "CDC Hub 演示账套") -> dict[str, Any]:
    if caller is None:
        return {
            "Message": message, "MessageCode": "CheckPasswordPolicy", "LoginResultType": 0, "Context": None,
            "KDSVCSessionId": None, "FormId": None, "RedirectFormParam": None, "FormInputObject": None,
            "ErrorStackTrace": None, "Lcid": 0, "AccessToken": None, "CustomParam": {}, "KdAccessResult": None,
            "IsSuccessByAPI": False,
        }  # fmt: skip
    context = {
        "UserLocale": "zh-CN", "LogLocale": "zh-CN", "DBid": caller.acct_id, "DatabaseType": 3,
        "SessionId": caller.session_id, "UseLanguages": [{"LocaleId": 2052, "LocaleName": "中文(简体)", "Alias": "CN"}],
        "UserId": 100099, "UserName": caller.user, "CustomName": acct_name, "DisplayVersion": "8.2.0",
        "DataCenterName": acct_name, "UserToken": caller.session_id, "ClientType": 32, "ContextResultType": 0,
        "CurrentOrganizationInfo": {
            "ID": 1, "AcctOrgType": "1", "Name": "CDC Hub 医疗器械", "FunctionIds": [101, 102, 103, 104],
        },
        "IsCH_ZH_AutoTrans": False, "LCID": caller.lcid,
    }  # fmt: skip
    return {
        "Message": None, "MessageCode": "CheckPasswordPolicy", "LoginResultType": 1, "Context": context,
        "KDSVCSessionId": caller.session_id, "FormId": None, "RedirectFormParam": None, "FormInputObject": None,
        "ErrorStackTrace": None, "Lcid": 0, "AccessToken": None, "CustomParam": {}, "KdAccessResult": None,
        "IsSuccessByAPI": True,
    }  # fmt: skip


def _lcid(value: Any) -> int:
    try:
        return int(value or 2052)
    except (TypeError, ValueError):
        return 2052


class KingdeeApi:
    def __init__(
        self,
        auth: Authenticator,
        writer: DocumentWriter,
        operations: StatusOperations,
        viewer: DocumentViewer,
        query: BillQuery,
        pusher: Pusher,
        forms: AccountForms = LENIENT,
    ) -> None:
        self.auth = auth
        self.writer = writer
        self.operations = operations
        self.viewer = viewer
        self.query = query
        self.pusher = pusher
        self.forms = forms

    def handle(self, req: Request) -> Answer:
        method = req.call.method
        is_query = method in QUERY_METHODS
        try:
            if req.call.service == "authservice":
                return self._login(req)
            if req.call.service.endswith("accountservice") and method == "getdatacenterlist":
                return Answer([{"Id": self.auth.credentials.acct_id, "Name": "CDC Hub 演示账套", "Number": "CDCHUB"}])
            caller = self._caller(req)
            notes = {"auth": caller.via, "service": req.call.label}
            if req.call.service != "dynamicformservice":
                raise env.KingdeeError(env.PARAMETER_ERROR, f"服务“{req.call.label}”不存在")
            answer = self._dynamic_form(req, method)
            answer.notes.update(notes)
            return answer
        except env.KingdeeError as exc:
            body = env.error_result(exc.msg_code, exc.problems)
            payload: Any = env.wrap_query_error(body) if is_query else body
            return Answer(payload, notes={"msg_code": exc.msg_code, "service": req.call.label})

    # --- auth ---------------------------------------------------------------------------------------------

    def _login(self, req: Request) -> Answer:
        method = req.call.method
        try:
            if method == "validateuser":
                acct, user, password, lcid = login_params(req.body, ("acctid", "username", "password", "lcid"))
                caller = self.auth.validate_user(str(acct or ""), str(user or ""), str(password or ""), _lcid(lcid))
            elif method == "loginbysign":
                acct, user, app_id, ts, sign, lcid = login_params(
                    req.body, ("acctid", "username", "appid", "timestamp", "sign", "lcid")
                )
                caller = self.auth.login_by_sign(
                    str(acct or ""), str(user or ""), str(app_id or ""), str(ts or ""), str(sign or ""), _lcid(lcid)
                )
            elif method == "loginbyappsecret":
                acct, user, app_id, secret, lcid = login_params(
                    req.body, ("acctid", "username", "appid", "appsecret", "lcid")
                )
                caller = self.auth.login_by_app_secret(
                    str(acct or ""), str(user or ""), str(app_id or ""), str(secret or ""), _lcid(lcid)
                )
            elif method == "logout":
                session_id = self.auth.session_id_of(req.headers, req.cookies)
                self.auth.expire_sessions(session_id) if session_id else None
                return Answer(True, notes={"service": req.call.label})
            else:
                raise env.KingdeeError(env.PARAMETER_ERROR, f"服务“{req.call.label}”不存在")
        except LoginFailed as exc:
            return Answer(login_answer(None, str(exc)), notes={"service": req.call.label, "login": "failed"})
        return Answer(
            login_answer(caller, None), session_id=caller.session_id, notes={"service": req.call.label, "login": "ok"}
        )

    def _caller(self, req: Request) -> Caller:
        if self.auth.is_signed(req.headers):
            try:
                return self.auth.by_signature(req.headers, req.path)
            except SignatureRejected as exc:
                raise env.KingdeeError(env.SESSION_LOST, f"{env.SESSION_LOST_MESSAGE}（{exc}）") from exc
        caller = self.auth.by_session(self.auth.session_id_of(req.headers, req.cookies))
        if caller is None:
            raise env.session_lost()
        return caller

    # --- DynamicFormService -----------------------------------------------------------------------------

    def _form(self, form_id: str | None, data: dict[str, Any]) -> FormDef:
        form_id = form_id or str({str(k).lower(): v for k, v in data.items()}.get("formid") or "")
        if not form_id:
            raise env.KingdeeError(env.PARAMETER_ERROR, "参数formid不能为空", "formid")
        form = form_by_id(form_id)
        if form is None:
            raise env.KingdeeError(env.PARAMETER_ERROR, f"业务对象“{form_id}”不存在", "formid")
        return form

    def _dynamic_form(self, req: Request, method: str) -> Answer:
        if method in QUERY_METHODS:
            _, data = form_and_data(req.body, with_form=False)
            rows = self.query.run(data)
            if method == "billquery":
                keys = [k.strip() for k in str(data.get("FieldKeys") or data.get("fieldkeys") or "").split(",")]
                rows = [dict(zip(keys, row, strict=False)) for row in rows]  # type: ignore[misc]
            return Answer(rows, notes={"returned": len(rows), "form_id": data.get("FormId")})
        form_id, data = form_and_data(req.body)
        form = self._form(form_id, data)
        notes: dict[str, Any] = {"form_id": form.form_id}
        if method in ("save", "batchsave"):
            if form.query_only:
                raise env.KingdeeError(env.NOT_OPERABLE, f"{form.caption}不支持保存操作")
            model = {str(k).lower(): v for k, v in data.items()}.get("model")
            models = model if isinstance(model, list) else [model] if model is not None else []
            if not models:
                raise env.KingdeeError(env.PARAMETER_ERROR, "参数Model不能为空", "Model")
            if len(models) > MAX_BATCH:
                raise env.KingdeeError(env.CALL_LIMIT, f"单次保存的数据不能超过{MAX_BATCH}条", "Model")
            options = SaveOptions.from_data(data)
            returned = self._returner(options.need_return_fields) if options.need_return_fields else None
            outcome = self.writer.save_many(form, models, options, returned)
            if not options.need_return_fields:
                outcome.return_data = [{} for _ in outcome.successes]
            notes.update(records=len(models), msg_code=outcome.msg_code)
            return Answer(env.save_result(outcome), notes=notes)
        if method in RULES:
            if form.query_only:
                raise env.KingdeeError(env.NOT_OPERABLE, f"{form.caption}不支持该操作")
            outcome = self.operations.run(method, form, data)
            notes.update(records=len(outcome.successes) + len(outcome.problems), msg_code=outcome.msg_code)
            return Answer(env.operation_result(outcome), notes=notes)
        if method == "querybusinessinfo":
            return Answer(business_info(form, self.forms), notes=notes)
        if method == "push":
            outcome = self.pusher.push(form.form_id, data)
            notes.update(records=len(outcome.successes), msg_code=outcome.msg_code)
            return Answer({"Result": {**env.operation_result(outcome)["Result"], "ConvertResponseStatus": None}},
                          notes=notes)
        if method == "view":
            document = self.viewer.view(form, data)
            return Answer({"Result": {"ResponseStatus": None, "Result": document}}, notes=notes)
        raise env.KingdeeError(env.PARAMETER_ERROR, f"服务“{req.call.label}”不存在或模拟器不支持")

    @staticmethod
    def _returner(keys: tuple[str, ...]) -> Callable[[Connection, FormDef, Any], dict[str, Any]]:
        """``NeedReturnFields``: header fields as values, entry fields as a list under the entry key."""

        def returned(conn: Connection, form: FormDef, doc_id: Any) -> dict[str, Any]:
            plan = QueryPlan(form)
            columns = [plan.column(k) for k in keys]
            key = m.TABLES[form.header].c[form.key]
            order: list[Any] = [key]
            if plan.uses_entry and form.entry is not None:
                order.append(plan._table(form.entry.table).c.FSEQ)
            rows = conn.execute(
                select(*columns).select_from(plan.from_clause()).where(key == doc_id).order_by(*order)
            ).all()
            out: dict[str, Any] = {}
            entry_lines: list[dict[str, Any]] = []
            for n, row in enumerate(rows):
                line: dict[str, Any] = {}
                for k, value in zip(keys, row, strict=True):
                    f = form.field(k.split(".")[0])
                    is_entry = (f is not None and form.is_entry_field(f)) or (
                        form.entry is not None and k.lower().startswith(form.entry.key.lower() + "_")
                    )
                    if is_entry:
                        line[k] = to_json(value)
                    elif n == 0:
                        out[k] = to_json(value)
                if line:
                    entry_lines.append(line)
            if entry_lines and form.entry is not None:
                out[form.entry.key] = entry_lines
            return out

        return returned

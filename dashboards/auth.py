"""Users, roles and the login: users come from a YAML file (hashes only), sessions from flask-login."""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import yaml
from flask import Flask, redirect, request
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user
from werkzeug.security import check_password_hash

from dashboards.scope import ROLE_ZH, Scope

EXAMPLE_USERS = Path(__file__).resolve().parent / "users.example.yaml"


@dataclass(frozen=True)
class User(UserMixin):
    username: str
    display_name: str
    password_hash: str
    scope: Scope

    def get_id(self) -> str:
        return self.username


def load_users(path: Path) -> dict[str, User]:
    """Read and validate every user at start-up, so that a bad scope fails loudly before anyone logs in."""
    entries = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["users"]
    return {u["username"]: User(u["username"], u.get("display_name", u["username"]), u["password_hash"],
                                Scope(u["role"], u.get("province_code"), u.get("county_code")))
            for u in entries}


LOGIN_PAGE = """<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8"><title>登录 / Login</title>
<style>body{{font-family:"Noto Sans CJK SC",sans-serif;max-width:22em;margin:6em auto}}
input{{display:block;width:100%;margin:.4em 0 1em;padding:.4em}}</style></head><body>
<h2>校外培训风险预警平台 / tutorwatch</h2><p style="color:#b00">{error}</p>
<form method="post" action="/login"><label>用户名 / Username<input id="username" name="username"></label>
<label>密码 / Password<input id="password" name="password" type="password"></label>
<button id="login" type="submit">登录 / Log in</button></form></body></html>"""

OPEN_PATHS = ("/login",)


def install(server: Flask, users: dict[str, User]) -> None:
    """Login/logout routes and a guard in front of every other request (pages, callbacks, downloads)."""
    manager = LoginManager(server)
    manager.user_loader(users.get)

    @server.route("/login", methods=["GET", "POST"])
    def login():
        error = ""
        if request.method == "POST":
            user = users.get(request.form.get("username", ""))
            if user and check_password_hash(user.password_hash, request.form.get("password", "")):
                login_user(user)
                return redirect("/")
            error = "用户名或密码错误 / wrong username or password"
        return LOGIN_PAGE.format(error=html.escape(error))

    @server.route("/logout")
    def logout():
        logout_user()
        return redirect("/login")

    @server.before_request
    def require_login():
        if request.path in OPEN_PATHS or current_user.is_authenticated:
            return None
        if request.path.startswith("/_dash") or request.path.startswith("/download"):
            return ("login required", 401)
        return redirect("/login")


def role_label(user: User) -> str:
    scope = user.scope
    where = scope.county_code or scope.province_code or "全国"
    return f"{user.display_name}({ROLE_ZH[scope.role]} {where})"

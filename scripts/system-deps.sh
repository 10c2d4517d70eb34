#!/usr/bin/env bash
# Debian packages for headless MuJoCo rendering (EGL through Mesa; OSMesa as the fallback).
# Installs only what is missing; needs root (or sudo) only when something is.
set -euo pipefail
pkgs=(libegl1 libgl1-mesa-dri libosmesa6)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
echo "installing ${missing[*]}" >&2
$sudo_cmd apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null

# Shared by install-and-test.sh and install-and-demo.sh: source it, do not run it.
# On Debian/Ubuntu it installs, with apt-get (as root, or through sudo), what napari needs
# to open a window (Mesa OpenGL, the xcb libraries), Xvfb for machines without a screen,
# and python3-venv when Python cannot make virtual environments; then it makes .venv (the
# system Python of Debian/Ubuntu refuses `pip install` outside one) and installs the
# package into it with the extras given.

SYSTEM_PACKAGES=(
  xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libdbus-1-3 libfontconfig1
  libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-xinerama0 libxcb-xinput0 libxcb-xfixes0 libxcb-shape0
  libxcb-cursor0
)

PYTHON="${PYTHON:-python3}"

missing_system_packages() {
  for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || echo "$package"
  done
  "$PYTHON" -c "import ensurepip" 2>/dev/null || echo "python3-venv"
}

install_system_packages() {
  command -v dpkg-query >/dev/null || { echo "Not Debian/Ubuntu: install Xvfb and Mesa yourself."; return; }
  local missing
  mapfile -t missing < <(missing_system_packages)
  [ ${#missing[@]} -eq 0 ] && return
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "Installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# install_cpu_torch EXTRAS: for the extras that bring PyTorch (testing, torch), install the
# pinned torch first, so that the [torch] extra finds it instead of pulling PyPI's newest
# CUDA build (gigabytes). CI has the CPU wheel of this version at hand; elsewhere set
# TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu for a CPU-only build.
TORCH_VERSION="${TORCH_VERSION:-2.13.0}"
install_cpu_torch() {
  case ",$1," in
    *,testing,*|*,torch,*)
      .venv/bin/python -m pip install -q "torch==$TORCH_VERSION" \
        ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} ;;
  esac
}

# install_python_packages EXTRAS: make .venv if needed and install ".[EXTRAS]" into it.
install_python_packages() {
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  install_cpu_torch "$1"
  .venv/bin/python -m pip install -q -e ".[$1]"
}

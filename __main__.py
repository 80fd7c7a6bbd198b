"""The program `pulumi up` runs: Pulumi.yaml has no `main`, so the engine runs this file from the project root.

Why the root and not `infra/` (issue 10, defect 1 and 2): the engine starts both the program and the Python
dynamic-provider plugin with the *main* directory as working directory (pulumi/pulumi pkg/engine/project.go
`getPwdMain`, pkg/resource/plugin/plugin.go `cmd.Dir = pwd`), and the plugin shim `pulumi-resource-pulumi-python`
resolves a relative `virtualenv` against that directory (`$PWD/$PULUMI_RUNTIME_VIRTUALENV`, pulumi/pulumi issue
7061). The pip toolchain runs `pip install -r requirements.txt` in the main directory too
(sdk/python/toolchain/pip.go). With the program at the root, all three agree on `./.venv` and `./requirements.txt`,
and `infra` is importable both here (runpy puts the program directory on sys.path) and in the plugin, which must
import `infra.migrations_resource` to unpickle the dynamic providers.
"""

from infra.pulumi_program import deploy

deploy()

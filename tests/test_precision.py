"""The bf16 switch: outputs stay fp32 and close to fp32 arithmetic, gradients flow, bad names fail."""
import pytest
import torch

from ldmiss.config import ConfigError, from_dict
from ldmiss.diffusion import VPSDE, SelfGuidance
from ldmiss.methods.common import eps_score
from ldmiss.methods.ddpm import PixelDiffusionConfig
from ldmiss.methods.latent_prior import LatentPriorConfig
from ldmiss.methods.vae_ops import VAEConfig
from ldmiss.nets import ResMLP, UNet
from ldmiss.nets.precision import autocast, in_precision


@pytest.mark.parametrize("net", [ResMLP((2, 7, 7), 64, 2), UNet((1, 28, 28), 8, (1, 2))])
def test_bf16_forward_is_fp32_and_close(net):
    torch.manual_seed(0)
    with torch.no_grad():  # the U-Net's output layer starts at zero; give it weights to compare
        for p in net.parameters():
            if not p.any():
                p.normal_(0, 0.05)
    t = torch.rand(8)
    x = torch.randn(8, 2, 7, 7) if isinstance(net, ResMLP) else torch.randn(8, 1, 28, 28)
    ref = net(x, t)
    out = in_precision(net, "bf16")(x, t)
    assert out.dtype == torch.float32
    # bf16 keeps 8 mantissa bits: a relative error of a few 1e-3 per op, about 1e-2 through a net
    assert (out - ref).norm() / ref.norm() < 5e-2
    assert not torch.equal(out, ref)  # it really ran in bf16
    assert in_precision(net, "fp32") is net


def test_guidance_gradient_through_a_bf16_score():
    torch.manual_seed(0)
    net, sde = ResMLP((2, 7, 7), 64, 2), VPSDE()
    decode = lambda u: torch.sigmoid(u.flatten(1)[:, :49].view(-1, 1, 7, 7))
    x_obs, mask = torch.rand(4, 1, 7, 7), (torch.rand(4, 1, 7, 7) < 0.5).float()
    x, t = torch.randn(4, 2, 7, 7), torch.full((4,), 0.4)
    g32 = SelfGuidance(eps_score(net, sde, "v", "fp32"), sde, decode, x_obs, mask).guidance_term(x, t)[1]
    g16 = SelfGuidance(eps_score(net, sde, "v", "bf16"), sde, decode, x_obs, mask).guidance_term(x, t)[1]
    assert g16.dtype == torch.float32 and torch.isfinite(g16).all()
    assert torch.nn.functional.cosine_similarity(g16.flatten(), g32.flatten(), dim=0) > 0.99


@pytest.mark.parametrize("cls", [LatentPriorConfig, PixelDiffusionConfig, VAEConfig])
def test_precision_is_a_checked_choice(cls):
    assert from_dict(cls, {"precision": "bf16"}).precision == "bf16"
    with pytest.raises(ConfigError, match="precision"):
        from_dict(cls, {"precision": "fp16"})


def test_autocast_names():
    with autocast("fp32"):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.float32
    with autocast("bf16"):
        assert torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        autocast("half")


def test_devices():
    from ldmiss.device import resolve_device, run_devices
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="cuda:N"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            resolve_device("cuda:1")
    assert run_devices("cuda", 5, 2) == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", "cuda:0"]
    assert run_devices("cuda:1", 3, 2) == ["cuda:1"] * 3
    assert run_devices("cpu", 2, 4) == ["cpu", "cpu"] and run_devices("cuda", 2, 1) == ["cuda", "cuda"]


@pytest.mark.slow
def test_tf32_is_fp32_on_the_cpu_and_compile_keeps_outputs_and_weights():
    torch.manual_seed(0)
    net = ResMLP((2, 3, 1), 16, 1)
    x, t = torch.randn(8, 2, 3, 1), torch.rand(8)
    ref = net(x, t)
    assert torch.equal(in_precision(net, "tf32")(x, t), ref)
    keys = set(net.state_dict())
    out = in_precision(net, "fp32", compile=True)(x, t)
    assert torch.allclose(out, ref, atol=1e-5) and set(net.state_dict()) == keys  # saving is unchanged
    assert from_dict(LatentPriorConfig, {"compile": True}).compile is True


@pytest.fixture(params=[True, False], ids=["native-bf16", "no-bf16"])
def bf16_hardware(request, monkeypatch):
    """Pretend the CPU has (or lacks) native bf16, whatever this machine has."""
    import ldmiss.nets.precision as precision
    monkeypatch.setattr(precision, "_native_bf16", lambda kind: request.param)
    return request.param


def test_auto_precision_follows_the_hardware(bf16_hardware):
    from ldmiss.nets.precision import resolve
    expected = "bf16" if bf16_hardware else "fp32"
    assert resolve("auto", "cpu") == expected and resolve("fp32", "cpu") == "fp32"
    with autocast("auto"):
        dtype = torch.ones(2, 2).matmul(torch.ones(2, 2)).dtype
    assert dtype == (torch.bfloat16 if bf16_hardware else torch.float32)
    net = ResMLP((2, 3, 1), 16, 1)
    x, t = torch.randn(4, 2, 3, 1), torch.rand(4)
    assert torch.equal(in_precision(net, "auto")(x, t), in_precision(net, expected)(x, t))


@pytest.mark.parametrize("name", ["ldmiss", "ddpm", "diffputer", "vae"])
def test_a_built_method_and_its_run_settings_hold_the_resolved_precision(name, bf16_hardware):
    """'auto' is a request; the saved config and a sweep's settings must say what ran, so a finished
    bf16 run is not resumed as if an fp32 machine had made it."""
    from ldmiss.config import leaves, to_dict
    from ldmiss.experiments.config import ExperimentConfig, parse_set
    from ldmiss.experiments.sweep import run_settings
    from ldmiss.methods import get_method_class
    cls = get_method_class(name)
    auto = {path: "auto" for path, _ in leaves(to_dict(cls.config_cls())) if path.endswith("precision")}
    assert auto, f"{name} has no precision option"
    overrides = parse_set([f'{path}="auto"' for path in auto])
    expected = "bf16" if bf16_hardware else "fp32"
    built = dict(leaves(to_dict(cls(None, device="cpu", **overrides).config)))
    assert {p: built[p] for p in auto} == {p: expected for p in auto}
    cfg = ExperimentConfig(name="t", methods=[name], overrides={name: overrides})
    stored = dict(leaves(run_settings(cfg, name, "cpu")["config"]))
    assert {p: stored[p] for p in auto} == {p: expected for p in auto}

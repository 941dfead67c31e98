"""ONNX export: ONNX Runtime's output equals model.predict (rtol 1e-4, atol 2e-5) at
batch 1 and batch > 1, for every exported layer type and the benchmark models, and
the file passes onnx.checker's full check."""
import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import importlib  # noqa: E402
import importlib.util  # noqa: E402

import pynn  # noqa: E402
import pynn.onnx  # noqa: E402
from pynn import layers  # noqa: E402

# The module (pynn.onnx.export is the function of the same name).
export_mod = importlib.import_module("pynn.onnx.export")

RTOL, ATOL = 1e-4, 2e-5


def _accepts(name):
    try:
        pynn.activations.get(name)
    except ValueError:
        return False
    return True


def _session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def assert_onnx_matches(model, xs, tmp_path, opset=export_mod.DEFAULT_OPSET):
    """Export, check the file, run ORT at batch 1 and at the full batch, compare with predict."""
    path = tmp_path / "model.onnx"
    pynn.onnx.export(model, path, opset=opset)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    assert proto.ir_version == onnx.helper.find_min_ir_version_for(list(proto.opset_import))
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    sess = _session(path)
    xs = xs if isinstance(xs, list) else [xs]
    for n in (1, len(xs[0])):
        batch = [x[:n] for x in xs]
        got = sess.run(None, {i.name: x for i, x in zip(sess.get_inputs(), batch)})
        ref = model.predict(batch if len(batch) > 1 else batch[0])
        ref = ref if isinstance(ref, list) else [ref]
        assert len(got) == len(ref)
        for g, r in zip(got, ref):
            assert g.shape == r.shape
            np.testing.assert_allclose(g, r, rtol=RTOL, atol=ATOL)
    return proto


def _f32(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


def _randomize_bn(model, rng):
    """Move BatchNorm statistics away from (0, 1) so folding them is really tested."""
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.3, b.shape),
                               rng.normal(0, 0.5, m.shape), rng.uniform(0.5, 2.0, v.shape)])


# Every name pynn.activations accepts (the table grows; so does this test), plus Keras' aliases when present.
ACTIVATIONS = sorted(set(pynn.activations._ACTIVATIONS)
                     | {a for a in ("swish", "hard_swish") if _accepts(a)})


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_on_rank3_and_every_activation_match_ort(activation, tmp_path, rng):
    model = pynn.Sequential([layers.Input((4, 5)), layers.Dense(6, activation=activation),
                             layers.Activation(activation), layers.Flatten(), layers.Dense(3, activation=activation)])
    assert_onnx_matches(model, _f32(rng, 3, 4, 5), tmp_path)


@pytest.mark.parametrize("padding,strides,dilation", [("valid", 1, 1), ("same", 2, 1), ("same", 1, 2),
                                                      ("valid", (2, 1), 1)])
def test_conv2d_bn_pool_flatten_dense_match_ort(padding, strides, dilation, tmp_path, rng):
    model = pynn.Sequential([
        layers.Input((11, 10, 3)),
        layers.Conv2D(5, (3, 2), strides=strides, padding=padding, dilation_rate=dilation, activation="relu"),
        layers.BatchNormalization(), layers.MaxPooling2D(2, padding="same"),
        layers.Conv2D(4, 3, padding="same", activation="elu", use_bias=False),
        layers.AveragePooling2D(3, strides=2, padding="same"), layers.Flatten(), layers.Dropout(0.5),
        layers.Dense(3)])
    _randomize_bn(model, rng)
    assert_onnx_matches(model, _f32(rng, 3, 11, 10, 3), tmp_path)


@pytest.mark.parametrize("keepdims", [False, True])
def test_pooling_layers_match_ort(keepdims, tmp_path, rng):
    x = pynn.Input((9, 9, 2))
    a = layers.MaxPooling2D(3, strides=2)(x)
    b = layers.AveragePooling2D(2, padding="valid")(x)
    c = layers.GlobalAveragePooling2D(keepdims=keepdims)(x)
    d = layers.GlobalMaxPooling2D(keepdims=keepdims)(x)
    model = pynn.Model(x, [a, b, c, d])
    assert_onnx_matches(model, _f32(rng, 3, 9, 9, 2), tmp_path)


def test_conv1d_pool1d_layernorm_global1d_match_ort(tmp_path, rng):
    x = pynn.Input((13, 4))
    h = layers.Conv1D(6, 3, strides=2, padding="same", activation="tanh")(x)
    h = layers.Conv1D(6, 2, dilation_rate=2)(h)
    h = layers.MaxPooling1D(2, padding="same")(h)
    h = layers.AveragePooling1D(2, strides=1, padding="same")(h)
    h = layers.LayerNormalization()(h)
    model = pynn.Model(x, [layers.GlobalAveragePooling1D()(h), layers.GlobalMaxPooling1D()(h)])
    for layer in model.layers:
        if isinstance(layer, layers.LayerNormalization):
            layer.set_weights([rng.uniform(0.5, 1.5, 6), rng.normal(0, 0.3, 6)])
    assert_onnx_matches(model, _f32(rng, 3, 13, 4), tmp_path)


def test_batchnorm_on_axis_1_and_layernorm_over_two_axes_match_ort(tmp_path, rng):
    model = pynn.Sequential([layers.Input((4, 5)), layers.BatchNormalization(axis=1),
                             layers.LayerNormalization(axis=(-2, -1), epsilon=1e-5),
                             layers.Reshape((5, 4)), layers.Rescaling(0.5, offset=-1.0), layers.Reshape((-1,))])
    _randomize_bn(model, rng)
    assert_onnx_matches(model, _f32(rng, 3, 4, 5), tmp_path)


def test_embedding_with_integer_ids_matches_ort(tmp_path, rng):
    model = pynn.Sequential([layers.Input((6,), dtype="int64"), layers.Embedding(20, 4), layers.Flatten(),
                             layers.Dense(3)])
    assert_onnx_matches(model, rng.integers(0, 20, (3, 6)), tmp_path)


@pytest.mark.parametrize("cls", [layers.SimpleRNN, layers.LSTM, layers.GRU])
@pytest.mark.parametrize("return_sequences,go_backwards", [(False, False), (True, False), (True, True),
                                                           (False, True)])
def test_recurrent_layers_match_ort(cls, return_sequences, go_backwards, tmp_path, rng):
    x = pynn.Input((7, 3))
    out = cls(5, return_sequences=return_sequences, go_backwards=go_backwards, return_state=True)(x)
    model = pynn.Model(x, out)
    w = model.layers[0].get_weights()
    model.layers[0].set_weights([rng.normal(0, 0.5, v.shape) for v in w])   # non-zero biases too
    assert_onnx_matches(model, _f32(rng, 3, 7, 3), tmp_path)


@pytest.mark.parametrize("merge_mode", ["concat", "sum", "mul", "ave", None])
def test_bidirectional_every_merge_mode_matches_ort(merge_mode, tmp_path, rng):
    x = pynn.Input((6, 3))
    out = layers.Bidirectional(layers.LSTM(4, return_sequences=True), merge_mode=merge_mode)(x)
    model = pynn.Model(x, out)
    assert_onnx_matches(model, _f32(rng, 3, 6, 3), tmp_path)


def test_bidirectional_gru_return_state_and_time_distributed_match_ort(tmp_path, rng):
    x = pynn.Input((6, 3))
    seq = layers.TimeDistributed(layers.Dense(4, activation="relu"))(x)
    outs = layers.Bidirectional(layers.GRU(3, return_state=True))(seq)
    model = pynn.Model(x, outs)
    assert_onnx_matches(model, _f32(rng, 3, 6, 3), tmp_path)


def test_encoder_decoder_with_initial_state_matches_ort(tmp_path, rng):
    enc_in, dec_in = pynn.Input((5, 3)), pynn.Input((4, 2))
    _, h, c = layers.LSTM(6, return_state=True)(enc_in)
    dec = layers.LSTM(6, return_sequences=True)(dec_in, initial_state=[h, c])
    model = pynn.Model([enc_in, dec_in], layers.Dense(2)(dec))
    assert_onnx_matches(model, [_f32(rng, 3, 5, 3), _f32(rng, 3, 4, 2)], tmp_path)


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_matches_ort(causal, tmp_path, rng):
    q, v = pynn.Input((5, 8)), pynn.Input((7, 6))
    mha = layers.MultiHeadAttention(2, 4, value_dim=3)
    if causal:
        model = pynn.Model(q, mha(q, q, use_causal_mask=True))
        xs = _f32(rng, 3, 5, 8)
    else:
        out, scores = mha(q, v, return_attention_scores=True)
        model = pynn.Model([q, v], [out, scores])
        xs = [_f32(rng, 3, 5, 8), _f32(rng, 3, 7, 6)]
    for w in mha.weights:   # non-zero biases
        w.assign(rng.normal(0, 0.3, w.shape))
    assert_onnx_matches(model, xs, tmp_path)


def test_multi_head_attention_with_a_boolean_attention_mask_input_matches_ort(tmp_path, rng):
    q, m = pynn.Input((5, 8)), pynn.Input((5, 5), dtype="bool")
    model = pynn.Model([q, m], layers.MultiHeadAttention(2, 4)(q, q, attention_mask=m, use_causal_mask=True))
    mask = rng.random((3, 5, 5)) > 0.3
    assert_onnx_matches(model, [_f32(rng, 3, 5, 8), mask], tmp_path)


@pytest.mark.parametrize("kind", ["dot", "dot_scale", "concat", "additive"])
def test_attention_layers_match_ort(kind, tmp_path, rng):
    q, v, k = pynn.Input((5, 6)), pynn.Input((4, 6)), pynn.Input((4, 6))
    if kind == "additive":
        layer = layers.AdditiveAttention()
    else:
        layer = layers.Attention(use_scale=kind != "dot", score_mode="concat" if kind == "concat" else "dot")
    if kind == "dot":
        model = pynn.Model([q, v, k], layer([q, v, k]))
        xs = [_f32(rng, 3, 5, 6), _f32(rng, 3, 4, 6), _f32(rng, 3, 4, 6)]
    else:
        # (a symbolic call with return_attention_scores=True gives one tensor in pynn today)
        model = pynn.Model(q, layer([q, q], use_causal_mask=True))
        xs = _f32(rng, 3, 5, 6)
    for w in layer.weights:
        w.assign(rng.uniform(0.5, 1.5, w.shape))
    assert_onnx_matches(model, xs, tmp_path)


@pytest.mark.parametrize("normalize_first", [False, True])
def test_transformer_encoder_with_position_encodings_matches_ort(normalize_first, tmp_path, rng):
    ids = pynn.Input((10,), dtype="int64")
    tok = layers.Embedding(30, 16)(ids)
    h = layers.Add()([tok, layers.PositionEmbedding(12)(tok), layers.SinePositionEncoding()(tok)])
    h = layers.TransformerEncoder(32, 4, normalize_first=normalize_first, activation="gelu")(h)
    model = pynn.Model(ids, layers.Dense(3)(layers.GlobalAveragePooling1D()(h)))
    assert_onnx_matches(model, rng.integers(0, 30, (3, 10)), tmp_path)


def test_functional_shared_layers_several_outputs_and_nested_model_match_ort(tmp_path, rng):
    a, b = pynn.Input((6,)), pynn.Input((6,))
    shared = layers.Dense(4, activation="tanh")
    inner = pynn.Sequential([layers.Input((8,)), layers.Dense(5, activation="relu"), layers.Dense(2)])
    ia = pynn.Input((4,))
    inner_fn = pynn.Model(ia, layers.Multiply()([ia, layers.Dense(4)(ia)]))
    cat = layers.Concatenate()([shared(a), shared(b)])
    out1 = inner(cat)
    out2 = inner_fn(layers.Add()([shared(a), shared(b)]))
    model = pynn.Model([a, b], [out1, out2])
    assert_onnx_matches(model, [_f32(rng, 3, 6), _f32(rng, 3, 6)], tmp_path)


@pytest.mark.parametrize("opset", [17, 18, 21])
def test_opsets_set_minimum_ir_version(opset, tmp_path, rng):
    if opset > onnx.defs.onnx_opset_version():
        pytest.skip(f"onnx {onnx.__version__} does not know opset {opset}")
    model = pynn.Sequential([layers.Input((5, 5, 1)), layers.Conv2D(2, 3), layers.GlobalAveragePooling2D(),
                             layers.LayerNormalization(), layers.Dense(2)])
    proto = assert_onnx_matches(model, _f32(rng, 2, 5, 5, 1), tmp_path, opset=opset)
    assert proto.ir_version == onnx.helper.find_min_ir_version_for([onnx.helper.make_opsetid("", opset)])


def test_model_export_method_writes_the_same_graph(tmp_path, rng):
    model = pynn.Sequential([layers.Input((4,)), layers.Dense(3)])
    path = tmp_path / "m.onnx"
    model.export(path, format="onnx")
    sess = _session(path)
    x = _f32(rng, 2, 4)
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x})[0], model.predict(x), RTOL, ATOL)
    with pytest.raises(ValueError, match="format"):
        model.export(tmp_path / "m.tflite", format="tflite")


# ------------------------------------------------------------------ benchmark models
def test_benchmark_models_match_ort(tmp_path, rng):
    import importlib.util
    import pathlib
    spec = importlib.util.spec_from_file_location(
        "train_step", pathlib.Path(__file__).resolve().parent.parent / "bench" / "train_step.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    shapes = {"_pynn_mlp": (784,), "_pynn_cnn": (28, 28, 1), "_pynn_lstm": (50, 32), "_pynn_transformer": (64, 128)}
    for name, shape in shapes.items():
        model = getattr(mod, name)()
        assert_onnx_matches(model, _f32(rng, 2, *shape), tmp_path)


# ------------------------------------------------------------------ what cannot be exported
def test_lambda_layer_is_refused_before_writing(tmp_path):
    model = pynn.Sequential([layers.Input((3,)), layers.Lambda(lambda t: t * 2, name="doubler"), layers.Dense(2)])
    path = tmp_path / "x.onnx"
    with pytest.raises(ValueError, match="doubler"):
        pynn.onnx.export(model, path)
    assert not path.exists()


class _Scale(layers.Layer):
    def __init__(self, factor=2.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor


def test_custom_layer_needs_and_can_register_an_exporter(tmp_path, rng):
    model = pynn.Sequential([layers.Input((3,)), _Scale(3.0, name="my_scale"), layers.Dense(2)])
    path = tmp_path / "x.onnx"
    with pytest.raises(ValueError, match="my_scale.*_Scale|_Scale.*register"):
        pynn.onnx.export(model, path)
    assert not path.exists()

    def export_scale(ctx, layer, inputs):
        return ctx.op("Mul", [inputs[0], ctx.const(np.float32(layer.factor))])
    pynn.onnx.register_exporter(_Scale, export_scale)
    try:
        assert_onnx_matches(model, _f32(rng, 3, 3), tmp_path)
    finally:
        export_mod._EXPORTERS.pop(_Scale)


def test_subclassed_model_is_refused(tmp_path):
    class Net(pynn.Model):
        def __init__(self):
            super().__init__()
            self.d = layers.Dense(2)

        def call(self, x, training=False):
            return self.d(x)
    net = Net()
    net.predict(np.zeros((1, 3), np.float32))
    with pytest.raises(ValueError, match="subclassed"):
        pynn.onnx.export(net, tmp_path / "x.onnx")


def _padded_ids(rng, n, steps, vocab):
    ids = rng.integers(1, vocab, (n, steps))
    ids[:, :2] = 0            # pre-padding (keras' pad_sequences default)
    ids[1::2, -2:] = 0        # post-padding on some rows
    return ids


@pytest.mark.parametrize("cls", [layers.SimpleRNN, layers.LSTM, layers.GRU])
@pytest.mark.parametrize("go_backwards", [False, True])
def test_padding_mask_through_recurrent_layers_matches_ort(cls, go_backwards, tmp_path, rng):
    ids = pynn.Input((7,), dtype="int64")
    h = layers.Embedding(12, 4, mask_zero=True)(ids)
    h = layers.Dense(5, activation="tanh")(h)                                # passes the mask on
    seq = cls(4, return_sequences=True, go_backwards=go_backwards)(h)
    last, *states = cls(3, return_state=True)(seq)
    pooled = [layers.GlobalAveragePooling1D()(seq), layers.GlobalMaxPooling1D()(seq)]
    model = pynn.Model(ids, [last] + states + pooled)
    for layer in model.layers:
        if isinstance(layer, cls):
            layer.set_weights([rng.normal(0, 0.5, w.shape) for w in layer.get_weights()])
    assert_onnx_matches(model, _padded_ids(rng, 4, 7, 12), tmp_path)
    with pynn.use_backend("numpy"):   # the mask really changes the result: compare with no mask
        ref = model.predict(_padded_ids(np.random.default_rng(5), 4, 7, 12))
    next(layer for layer in model.layers if isinstance(layer, layers.Embedding)).mask_zero = False
    unmasked = model.predict(_padded_ids(np.random.default_rng(5), 4, 7, 12))
    assert not np.allclose(ref[0], unmasked[0], atol=1e-3)


def test_padding_mask_through_bidirectional_and_attention_matches_ort(tmp_path, rng):
    ids = pynn.Input((6,), dtype="int64")
    h = layers.Embedding(12, 8, mask_zero=True)(ids)
    seq = layers.Bidirectional(layers.LSTM(4, return_sequences=True))(h)
    att = layers.MultiHeadAttention(2, 4)(seq, seq)
    model = pynn.Model(ids, [att, layers.GlobalAveragePooling1D()(seq)])
    assert_onnx_matches(model, _padded_ids(rng, 4, 6, 12), tmp_path)


def test_padding_mask_reaching_a_transformer_encoder_is_refused(tmp_path):
    model = pynn.Sequential([layers.Input((5,), dtype="int64"), layers.Embedding(10, 8, mask_zero=True),
                             layers.TransformerEncoder(16, 2)])
    with pytest.raises(ValueError, match="mask"):
        pynn.onnx.export(model, tmp_path / "x.onnx")


def test_bad_opset_is_a_clear_error(tmp_path):
    model = pynn.Sequential([layers.Input((3,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="opset"):
        pynn.onnx.export(model, tmp_path / "x.onnx", opset=11)


def test_activation_layers_relu_leaky_elu_softmax_prelu_match_ort(tmp_path, rng):
    x = pynn.Input((4, 6))
    outs = [layers.ReLU()(x), layers.ReLU(max_value=0.5)(x), layers.ReLU(negative_slope=0.1)(x),
            layers.ReLU(threshold=0.3)(x), layers.ReLU(max_value=1.0, negative_slope=0.2, threshold=-0.4)(x),
            layers.ReLU(max_value=0.8, negative_slope=0.05, threshold=0.25)(x), layers.LeakyReLU()(x),
            layers.LeakyReLU(negative_slope=0.07)(x), layers.ELU()(x), layers.ELU(alpha=0.4)(x),
            layers.Softmax()(x), layers.Softmax(axis=1)(x), layers.Softmax(axis=(1, 2))(x)]
    prelu_full, prelu_shared = layers.PReLU(), layers.PReLU(shared_axes=[1])
    outs += [prelu_full(x), prelu_shared(x)]
    model = pynn.Model(x, outs)
    prelu_full.set_weights([rng.uniform(-0.5, 1.0, (4, 6)).astype(np.float32)])
    prelu_shared.set_weights([rng.uniform(-0.5, 1.0, (1, 6)).astype(np.float32)])
    assert prelu_shared.alpha.shape == (1, 6)
    xs = _f32(rng, 3, 4, 6)
    xs[0, 0, :3] = [0.3, -0.4, 0.0]   # exactly at the thresholds
    assert_onnx_matches(model, xs, tmp_path)


def test_softmax_with_a_mask_input_matches_ort(tmp_path, rng):
    x, m = pynn.Input((5,)), pynn.Input((5,))
    model = pynn.Model([x, m], layers.Softmax()(x, mask=m))
    mask = (rng.random((3, 5)) > 0.4).astype(np.float32)
    mask[:, 0] = 1.0
    assert_onnx_matches(model, [_f32(rng, 3, 5), mask], tmp_path)


def test_identity_noise_spatial_dropout_and_merge_layers_match_ort(tmp_path, rng):
    a, b, c = pynn.Input((4, 3)), pynn.Input((4, 3)), pynn.Input((4, 3))
    h = layers.SpatialDropout1D(0.5)(layers.GaussianNoise(1.0)(layers.Identity()(a)))
    outs = [layers.Subtract()([h, b]), layers.Average()([a, b, c]), layers.Maximum()([a, b, c]),
            layers.Minimum()([a, b]), layers.average([b, c])]
    model = pynn.Model([a, b, c], outs)
    assert_onnx_matches(model, [_f32(rng, 3, 4, 3) for _ in range(3)], tmp_path)


def test_permute_repeat_vector_padding_cropping_upsampling_1d_match_ort(tmp_path, rng):
    x = pynn.Input((7, 3))
    h = layers.ZeroPadding1D((2, 1))(x)
    h = layers.Cropping1D((1, 3))(h)
    h = layers.UpSampling1D(3)(h)
    h = layers.Permute((2, 1))(h)
    v = layers.RepeatVector(4)(layers.GlobalAveragePooling1D()(x))
    model = pynn.Model(x, [h, v, layers.ZeroPadding1D(1)(x), layers.Cropping1D((0, 2))(x)])
    assert_onnx_matches(model, _f32(rng, 3, 7, 3), tmp_path)


def test_padding_cropping_upsampling_2d_and_permute_match_ort(tmp_path, rng):
    x = pynn.Input((5, 6, 2))
    h = layers.ZeroPadding2D(((1, 2), (0, 3)))(x)
    h = layers.Cropping2D(((2, 0), (1, 1)))(h)
    h = layers.UpSampling2D((2, 3))(h)
    model = pynn.Model(x, [h, layers.UpSampling2D()(x), layers.ZeroPadding2D(1)(x), layers.Cropping2D(1)(x),
                           layers.Permute((3, 1, 2))(x)])
    assert_onnx_matches(model, _f32(rng, 3, 5, 6, 2), tmp_path)


def test_unit_normalization_and_normalization_match_ort(tmp_path, rng):
    data = (rng.standard_normal((50, 4, 3)) * [1.0, 2.0, 0.5] + [0.0, 3.0, -1.0]).astype(np.float32)
    adapted = layers.Normalization()
    adapted.adapt(data)
    over_two = layers.Normalization(axis=(1, 2))
    over_two.adapt(data)
    x = pynn.Input((4, 3))
    outs = [adapted(x), over_two(x), layers.Normalization(axis=None, mean=2.0, variance=4.0)(x),
            layers.Normalization(mean=[1.0, -2.0, 0.5], variance=[4.0, 0.25, 1.0], invert=True)(x),
            layers.UnitNormalization()(x), layers.UnitNormalization(axis=(1, 2))(x), layers.UnitNormalization(1)(x)]
    model = pynn.Model(x, outs)
    xs = data[:3].copy()
    xs[0, 1] = 0.0   # a zero vector: the 1e-12 floor, not a division by zero
    assert_onnx_matches(model, xs, tmp_path)


@pytest.mark.parametrize("padding,strides,dilation", [("valid", 1, 1), ("same", 2, 1), ("same", 1, 2),
                                                      ("valid", (2, 1), 1)])
def test_depthwise_and_separable_conv2d_match_ort(padding, strides, dilation, tmp_path, rng):
    x = pynn.Input((9, 8, 3))
    d = layers.DepthwiseConv2D((3, 2), strides=strides, padding=padding, depth_multiplier=2,
                               dilation_rate=dilation, activation="relu")(x)
    s = layers.SeparableConv2D(4, 3, strides=strides, padding=padding, dilation_rate=dilation, depth_multiplier=2,
                               activation="tanh")(x)
    s2 = layers.SeparableConv2D(5, 2, use_bias=False)(layers.DepthwiseConv2D(3, use_bias=False, padding="same")(x))
    model = pynn.Model(x, [d, s, layers.Flatten()(s2)])
    for layer in model.layers:
        if getattr(layer, "bias", None) is not None:
            layer.bias.assign(rng.normal(0, 0.5, layer.bias.shape).astype(np.float32))
    assert_onnx_matches(model, _f32(rng, 3, 9, 8, 3), tmp_path)


@pytest.mark.parametrize("kernel,strides,padding", [(3, 1, "valid"), (3, 2, "valid"), (3, 2, "same"),
                                                    ((4, 3), (2, 3), "same"), (1, 2, "same"), ((2, 5), (3, 2), "same"),
                                                    (2, 2, "same")])
def test_conv2d_transpose_matches_ort(kernel, strides, padding, tmp_path, rng):
    layer = layers.Conv2DTranspose(4, kernel, strides=strides, padding=padding, activation="elu")
    model = pynn.Sequential([layers.Input((5, 4, 3)), layer])
    layer.bias.assign(rng.normal(0, 0.5, 4).astype(np.float32))
    assert_onnx_matches(model, _f32(rng, 3, 5, 4, 3), tmp_path)


def test_dot_every_axes_form_and_normalize_match_ort(tmp_path, rng):
    a2, b2 = pynn.Input((5,)), pynn.Input((5,))
    a3, b3 = pynn.Input((4, 6)), pynn.Input((3, 6))
    c3 = pynn.Input((4, 3))
    outs = [layers.Dot(1)([a2, b2]), layers.Dot(-1, normalize=True)([a2, b2]), layers.Dot((2, 2))([a3, b3]),
            layers.Dot((2, 2), normalize=True)([a3, b3]), layers.Dot((1, 1))([a3, c3]),
            layers.Dot((2, 1))([b3, layers.Permute((2, 1))(b3)])]
    model = pynn.Model([a2, b2, a3, b3, c3], outs)
    xs = [_f32(rng, 3, 5), _f32(rng, 3, 5), _f32(rng, 3, 4, 6), _f32(rng, 3, 3, 6), _f32(rng, 3, 4, 3)]
    assert_onnx_matches(model, xs, tmp_path)


@pytest.mark.parametrize("shape,groups", [((6, 8), 4), ((5, 4, 6), 3), ((7, 4), 1)])
def test_group_normalization_matches_ort(shape, groups, tmp_path, rng):
    layer = layers.GroupNormalization(groups=groups, epsilon=1e-4)
    model = pynn.Sequential([layers.Input(shape), layer, layers.GroupNormalization(groups, center=False,
                                                                                    scale=False)])
    c = shape[-1]
    layer.set_weights([rng.uniform(0.5, 1.5, c).astype(np.float32), rng.normal(0, 0.3, c).astype(np.float32)])
    xs = (_f32(rng, 3, *shape) * 2.0 + 1.0).astype(np.float32)
    assert_onnx_matches(model, xs, tmp_path)


def test_category_encoding_every_output_mode_matches_ort(tmp_path, rng):
    ids, one = pynn.Input((4,), dtype="int64"), pynn.Input((1,), dtype="int64")
    model = pynn.Model([ids, one], [layers.CategoryEncoding(7, output_mode="multi_hot")(ids),
                                    layers.CategoryEncoding(7, output_mode="count")(ids),
                                    layers.CategoryEncoding(7, output_mode="one_hot")(one)])
    many = rng.integers(0, 7, (3, 4))
    many[0] = [2, 2, 5, 2]   # repeated ids: 3 in "count", 1 in "multi_hot"
    assert_onnx_matches(model, [many, rng.integers(0, 7, (3, 1))], tmp_path)


def test_masking_layer_mask_through_recurrent_bidirectional_and_pooling_matches_ort(tmp_path, rng):
    x = pynn.Input((6, 3))
    h = layers.Masking(mask_value=0.5)(x)
    outs = [layers.LSTM(4)(h), layers.Bidirectional(layers.GRU(3, return_sequences=True))(h),
            layers.GlobalAveragePooling1D()(h), layers.GlobalMaxPooling1D()(h), h]
    model = pynn.Model(x, outs)
    xs = _f32(rng, 3, 6, 3)
    xs[0, 4:] = 0.5          # trailing padded steps
    xs[1, 1] = 0.5           # a masked step in the middle
    xs[2, 2, 0] = 0.5        # one feature equal to mask_value: not masked
    assert_onnx_matches(model, xs, tmp_path)


@pytest.mark.parametrize("cell", ["simple", "lstm", "gru"])
@pytest.mark.parametrize("go_backwards,masked", [(False, False), (True, False), (False, True)])
def test_rnn_over_builtin_cells_matches_ort(cell, go_backwards, masked, tmp_path, rng):
    make = {"simple": lambda: layers.SimpleRNNCell(4, activation="relu"),
            "lstm": lambda: layers.LSTMCell(4, use_bias=False), "gru": lambda: layers.GRUCell(4)}[cell]
    x = pynn.Input((5, 3))
    h = layers.Masking()(x) if masked else x
    seq = layers.RNN(make(), return_sequences=True, go_backwards=go_backwards)(h)
    outs = layers.RNN(make(), return_state=True)(seq)
    model = pynn.Model(x, list(outs))
    for layer in model.layers:
        if isinstance(layer, layers.RNN) and layer.cell.bias is not None:
            layer.cell.bias.assign(rng.normal(0, 0.5, layer.cell.bias.shape).astype(np.float32))
    xs = _f32(rng, 3, 5, 3)
    if masked:
        xs[0, 3:] = 0.0
        xs[1, 1] = 0.0
    assert_onnx_matches(model, xs, tmp_path)


def test_rnn_over_gru_cell_without_reset_after_is_refused_before_writing(tmp_path):
    model = pynn.Sequential([layers.Input((4, 2)), layers.RNN(layers.GRUCell(3, reset_after=False))])
    path = tmp_path / "m.onnx"
    with pytest.raises(ValueError, match="reset_after=False"):
        pynn.onnx.export(model, path)
    assert not path.exists()


def test_unsupported_list_names_every_refused_layer_class():
    exported = set(export_mod._EXPORTERS)
    for name in layers.__all__:
        cls = getattr(layers, name)
        if isinstance(cls, type) and issubclass(cls, layers.Layer) and cls is not layers.Layer:
            assert cls in exported or name in pynn.onnx.UNSUPPORTED, name


@pytest.mark.parametrize("kind", ["conv_bn", "lstm_gru", "mha"])
def test_onnx_reference_evaluator_agrees_too(kind, tmp_path, rng):
    """A second runtime: onnx's pure-Python ReferenceEvaluator on the same files."""
    from onnx.reference import ReferenceEvaluator
    if kind == "conv_bn":
        model = pynn.Sequential([layers.Input((7, 7, 2)), layers.Conv2D(3, 3, strides=2, padding="same"),
                                 layers.BatchNormalization(), layers.AveragePooling2D(2, padding="same"),
                                 layers.Flatten(), layers.Dense(2, activation="softmax")])
        _randomize_bn(model, rng)
        x = _f32(rng, 2, 7, 7, 2)
    elif kind == "lstm_gru":
        model = pynn.Sequential([layers.Input((5, 3)), layers.LSTM(4, return_sequences=True), layers.GRU(3)])
        x = _f32(rng, 2, 5, 3)
    else:
        q = pynn.Input((4, 8))
        model = pynn.Model(q, layers.MultiHeadAttention(2, 4)(q, q, use_causal_mask=True))
        x = _f32(rng, 2, 4, 8)
    path = tmp_path / "m.onnx"
    pynn.onnx.export(model, path)
    ref = ReferenceEvaluator(str(path))
    got = ref.run(None, {ref.input_names[0]: x})[0]
    np.testing.assert_allclose(got, model.predict(x), rtol=RTOL, atol=ATOL)


def test_predict_table_runs_and_its_three_contenders_agree():
    """bench/predict_table.py checks pynn, ONNX Runtime and PyTorch agree before timing."""
    pytest.importorskip("torch")
    import pathlib
    import sys
    bench = pathlib.Path(__file__).resolve().parent.parent / "bench"
    sys.path.insert(0, str(bench))
    threads, active = pynn.get_num_threads(), pynn.backend.name()
    try:
        spec = importlib.util.spec_from_file_location("predict_table", bench / "predict_table.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        rows = mod.main(["--models", "mlp", "--min-time", "0.01"])
    finally:
        sys.path.remove(str(bench))
        pynn.set_num_threads(threads)     # main() sets the process-wide thread count and backend
        pynn.set_backend(active)
    assert [(r["model"], r["batch"]) for r in rows] == [("mlp", 1), ("mlp", 64)]
    assert all(r["pynn_ms"] > 0 and r["onnxruntime_ms"] > 0 and r["torch_ms"] > 0 for r in rows)

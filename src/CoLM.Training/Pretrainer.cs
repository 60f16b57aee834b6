using System.Diagnostics;
using CoLM.Data;
using CoLM.Model;
using CoLM.Model.Hf;
using CoLM.Training.Settings;
using static TorchSharp.torch;

namespace CoLM.Training;

/// <summary>
/// `colm pretrain`, one step top to bottom: a batch of corpus lines, next-token loss on every
/// token, backward through every base weight (the LoRA adapters stay out: B is zero, so they add
/// nothing), clip, AdamW. The result is saved as a Hugging Face Llama folder, so fine-tuning loads
/// it like any other model. Tensor lifetime: a dispose scope per step.
/// </summary>
public sealed class Pretrainer : IDisposable
{
    private readonly ColmSettings _settings;
    private readonly LlamaDecoder _model;
    private readonly List<TorchSharp.Modules.Parameter> _base;
    private readonly List<TorchSharp.Modules.Parameter> _adapters;
    private readonly optim.Optimizer _optimizer;

    public Pretrainer(ColmSettings settings)
    {
        if (settings.Model.Path.Length > 0)
            throw new ArgumentException("pretraining starts from the built-in decoder, not a model folder", nameof(settings));
        _settings = settings;
        _model = new LlamaDecoder(settings.Model.ToDecoderConfig(CharTokenizer.Instance.VocabSize), settings.Model.Lora, settings.Model.InitSeed);
        // Every base weight trains; the adapters do not (they are zero until fine-tuning).
        _adapters = [.. _model.TrainableParameters().Select(t => t.Parameter)];
        _base = [.. _model.named_parameters().Select(n => n.parameter).Where(p => !_adapters.Any(a => ReferenceEquals(a, p)))];
        foreach (var p in _adapters) p.requires_grad_(false);
        foreach (var p in _base) p.requires_grad_(true);
        _optimizer = optim.AdamW(_base, lr: settings.Pretrain.LearningRate, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.01);
    }

    public long Parameters => _base.Sum(p => p.numel());

    /// <summary>Runs every step; <paramref name="progress"/> gets (step, mean loss since the last call) every <paramref name="every"/> steps.</summary>
    public void Run(Action<int, double> progress, int every, CancellationToken stop)
    {
        var p = _settings.Pretrain;
        double sum = 0;
        int count = 0;
        _model.train();
        for (int step = 1; step <= p.Steps; step++)
        {
            stop.ThrowIfCancellationRequested();
            using var scope = NewDisposeScope();
            var rows = Enumerable.Range(0, p.BatchSize).Select(i => Row(PretrainCorpus.Line(p.CorpusSeed, (long)(step - 1) * p.BatchSize + i))).ToList();
            using var batch = Collate.Build(rows, CharTokenizer.Pad, CPU);
            _optimizer.zero_grad();
            var loss = TokenLoss.PerExample(_model.forward(batch.Inputs), batch.Targets, batch.Mask).mean();
            loss.backward();
            nn.utils.clip_grad_norm_(_base, 1.0);
            foreach (var group in _optimizer.ParamGroups) group.LearningRate = RateAt(step);
            _optimizer.step();
            sum += loss.item<float>();
            count++;
            if (step % every == 0 || step == p.Steps)
            {
                progress(step, sum / count);
                sum = 0;
                count = 0;
            }
        }
    }

    /// <summary>
    /// Writes the trained decoder as a LlamaForCausalLM folder (fp32): base weights frozen and
    /// adapters trainable again, as the saver and fine-tuning expect; and beside it how it was made
    /// (<see cref="PretrainedBase.ProvenanceFile"/>), which also marks it as read by characters.
    /// </summary>
    public void Save(string directory, double finalLoss, double seconds)
    {
        foreach (var p in _base) p.requires_grad_(false);
        foreach (var p in _adapters) p.requires_grad_(true);
        HfModelSaver.SaveMerged(_model, directory);
        var s = _settings;
        var provenance = new
        {
            made_by = "colm pretrain",
            tokenizer = "char",
            steps = s.Pretrain.Steps,
            batch_size = s.Pretrain.BatchSize,
            learning_rate = s.Pretrain.LearningRate,
            corpus_seed = s.Pretrain.CorpusSeed,
            init_seed = s.Model.InitSeed,
            max_length = Math.Min(s.Model.MaxSeqLen, s.Data.MaxLength),
            final_loss = Math.Round(finalLoss, 4),
            seconds = Math.Round(seconds),
            threads = get_num_threads(),
        };
        File.WriteAllText(System.IO.Path.Combine(directory, PretrainedBase.ProvenanceFile),
            System.Text.Json.JsonSerializer.Serialize(provenance, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>[BOS] line [EOS] with only BOS outside the loss: the model learns every character of the line.</summary>
    private (int[] Tokens, int PromptLength) Row(string line)
    {
        var text = CharTokenizer.Instance.Encode(line);
        int max = Math.Min(_settings.Model.MaxSeqLen, _settings.Data.MaxLength);
        int[] tokens = [CharTokenizer.Bos, .. text.Take(max - 2), CharTokenizer.Eos];
        return (tokens, 1);
    }

    /// <summary>3% linear warmup, then linear decay to 10% of the peak.</summary>
    private double RateAt(int step)
    {
        var p = _settings.Pretrain;
        int warmup = Math.Max(1, (int)(0.03 * p.Steps));
        double fraction = step <= warmup ? (double)step / warmup : 1 - 0.9 * (step - warmup) / Math.Max(1, p.Steps - warmup);
        return p.LearningRate * fraction;
    }

    public void Dispose()
    {
        _optimizer.Dispose();
        _model.Dispose();
    }
}

//! The command line's spellings (a contract: see the README).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(
    name = "bnlab",
    version,
    about = "Build, train, inspect and compare Batch Normalization networks, as PyTorch does"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Command,
}

/// How this process runs, not what it computes: given before or after any command (a resumed
/// run takes them from its own command line, not from its checkpoint).
#[derive(Args, Debug, Clone, Default)]
#[command(next_help_heading = "Process settings")]
pub struct Settings {
    /// Threads (0: all cores).
    #[arg(long, global = true, default_value_t = 0)]
    pub threads: usize,
    /// A folder with the dataset's files (default: the repository's data/mnist for MNIST, else a
    /// cache folder the files are downloaded into).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, global = true)]
    pub quiet: bool,
    /// The settings given on the command line, as their flags (filled in after parsing): a
    /// command refuses those it has no use for instead of ignoring them.
    #[arg(skip)]
    pub given: Vec<&'static str>,
}

impl Settings {
    /// Each setting's argument id and flag.
    pub const FLAGS: [(&'static str, &'static str); 3] = [
        ("threads", "--threads"),
        ("data_dir", "--data-dir"),
        ("quiet", "--quiet"),
    ];
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Train a model (the seed's BNModel by default) and write its history, plot and weights.
    Train(TrainArgs),
    /// Test-set loss and accuracy of saved weights.
    Eval(EvalArgs),
    /// The seed's first cells: a (10, 5) uniform batch through BatchNorm1d(5).
    Demo(DemoArgs),
    /// torchinfo's summary table of a model.
    Summary(SummaryArgs),
    /// Train several models with the same seed and data order; a table and one plot.
    Compare(CompareArgs),
    /// Median seconds per training epoch and per test-set evaluation on in-memory MNIST (or a
    /// CSV table).
    Bench(BenchArgs),
    /// Fold eval-mode BatchNorms into the layers beside them: a state dict and a model file.
    Fold(FoldArgs),
    /// The top-3 classes of a trained model for PNG or JPEG images of any size.
    Predict(PredictArgs),
    /// A trained model as an ONNX file (opset 21), BatchNorm folded first with --fold.
    Export(ExportArgs),
    /// A paper's experiment on BatchNorm in one command: a table, results.json, figures and
    /// an HTML report.
    Experiment(ExperimentArgs),
    /// One self-contained HTML page about a training run: options, model, history, plots.
    Report(ReportArgs),
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerName {
    Adam,
    Adamw,
    Sgd,
}

/// The course's two modes of `fit`.
#[derive(
    Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    #[default]
    Multi,
    Binary,
}

impl ModeName {
    pub fn mode(self) -> bnlab::train::Mode {
        match self {
            ModeName::Multi => bnlab::train::Mode::Multi,
            ModeName::Binary => bnlab::train::Mode::Binary,
        }
    }
}

/// `--precision`: how the matrix products compute (`bnlab::Precision`).
#[derive(
    Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PrecisionName {
    /// Float32 operands and sums.
    #[default]
    F32,
    /// bfloat16 operands, float32 sums (PyTorch's autocast split), on AVX512-BF16 or AMX.
    Bf16,
}

impl PrecisionName {
    pub fn precision(self) -> bnlab::Precision {
        match self {
            PrecisionName::F32 => bnlab::Precision::F32,
            PrecisionName::Bf16 => bnlab::Precision::Bf16,
        }
    }

    /// Before any work: bf16 on a CPU without a bfloat16 kernel is refused in one line.
    pub fn check(self) -> bnlab::Result<()> {
        if self == PrecisionName::Bf16 {
            bnlab::internal::bf16::kernel()
                .map_err(|why| bnlab::Error::Invalid(format!("--precision bf16: {why}")))?;
        }
        Ok(())
    }
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SchedulerName {
    None,
    Step,
    Cosine,
    CosineRestarts,
}

/// A run's own options, shared by every command that trains: what it computes (the process's
/// settings are [`Settings`]).
#[derive(Args, Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TrainOptions {
    /// Epochs to train.
    #[arg(long, default_value_t = 10)]
    pub epochs: usize,
    /// Examples per batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Skip each epoch's last training batch when it is smaller than --batch-size (as
    /// PyTorch's DataLoader(drop_last=True)): BatchNorm cannot train on a batch of one example.
    #[arg(long)]
    #[serde(default)]
    pub drop_last: bool,
    /// Learning rate.
    #[arg(long, default_value_t = 0.001, allow_negative_numbers = true)]
    pub lr: f64,
    #[arg(long, value_enum, default_value_t = OptimizerName::Adam)]
    pub optimizer: OptimizerName,
    /// Weight decay (L2 for adam and sgd, decoupled for adamw; adamw's default is 0.01).
    #[arg(long, allow_negative_numbers = true)]
    pub weight_decay: Option<f64>,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.0, allow_negative_numbers = true)]
    pub momentum: f64,
    /// SGD with Nesterov momentum.
    #[arg(long)]
    pub nesterov: bool,
    /// Learning-rate schedule, stepped once per epoch.
    #[arg(long, value_enum, default_value_t = SchedulerName::None)]
    pub scheduler: SchedulerName,
    /// StepLR: epochs between decays.
    #[arg(long, default_value_t = 5)]
    pub step_size: usize,
    /// StepLR: factor of each decay.
    #[arg(long, default_value_t = 0.5, allow_negative_numbers = true)]
    pub gamma: f64,
    /// CosineAnnealingWarmRestarts: epochs of the first period.
    #[arg(long, default_value_t = 5)]
    pub t0: usize,
    /// CosineAnnealingWarmRestarts: growth of each period.
    #[arg(long, default_value_t = 1)]
    pub t_mult: usize,
    /// Save the model whenever the validation loss improves (OUT/best.safetensors).
    #[arg(long)]
    pub save_best: bool,
    /// Stop when the validation loss has not improved for --patience epochs.
    #[arg(long)]
    pub early_stopping: bool,
    #[arg(long, default_value_t = 10)]
    pub patience: usize,
    /// Seeds initialisation, shuffling and dropout.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// mnist, fashion-mnist, cifar10, or csv (with --train-csv and --target).
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// --dataset csv: the training table (a header row, numeric columns).
    #[arg(long)]
    #[serde(default)]
    pub train_csv: Option<PathBuf>,
    /// --dataset csv: the test table (same columns); without it, a seeded --test-fraction of
    /// the training table's rows.
    #[arg(long, conflicts_with = "test_fraction")]
    #[serde(default)]
    pub test_csv: Option<PathBuf>,
    /// --dataset csv without --test-csv: the fraction of rows held out for testing, drawn with
    /// --seed [default: 0.2].
    #[arg(long)]
    #[serde(default)]
    pub test_fraction: Option<f64>,
    /// --dataset csv: the column to predict (every other column is a feature).
    #[arg(long)]
    #[serde(default)]
    pub target: Option<String>,
    /// multi: classes 0..K-1, cross entropy, argmax; binary: targets 0/1, one logit,
    /// BCEWithLogits, threshold 0.5.
    #[arg(long, value_enum, default_value_t = ModeName::Multi)]
    #[serde(default)]
    pub mode: ModeName,
    /// Augment the training batches as torchvision users do: a random affine map (up to 10
    /// degrees, 10% shift, scale 0.9-1.1) for MNIST and Fashion-MNIST, a random crop of the
    /// image padded by 4 and a random horizontal flip for CIFAR-10. Evaluation never is.
    #[arg(long)]
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub augment: bool,
    /// The cosine schedule's period when a resumed run trains for more epochs than its first
    /// `--epochs` (which stays the period); not an option of its own.
    #[arg(skip)]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosine_t_max: Option<usize>,
    /// Matrix products and convolutions, forward and backward: f32, or bf16 (bfloat16
    /// operands, float32 sums, on the CPU's AVX512-BF16 or AMX units; refused on a CPU without
    /// them). Everything else, and the saved weights, stay float32.
    #[arg(long, value_enum, default_value_t = PrecisionName::F32)]
    #[serde(default)]
    pub precision: PrecisionName,
}

/// What `bnlab train` records of its normalisation layers while it trains.
#[derive(Args, Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct WatchOptions {
    /// Record every BatchNorm, LayerNorm and GroupNorm layer's input and output distribution,
    /// batch against running statistics, gradient norm and the weight norm before it, every
    /// --stats-every steps: OUT/stats.csv and OUT/stats.png.
    #[arg(long)]
    pub stats: bool,
    /// Steps between two records of --stats and of --tensorboard's histograms (step 1 is
    /// always recorded) [default: 50].
    #[arg(long)]
    pub stats_every: Option<usize>,
    /// The unit (feature or channel) whose 15th, 50th and 85th percentiles --stats records
    /// [default: 0].
    #[arg(long)]
    pub unit: Option<usize>,
    /// Write TensorBoard event files into this folder: loss, accuracy and learning rate per
    /// epoch; histograms of each normalisation layer's input and output and of each parameter
    /// every --stats-every steps.
    #[arg(long, value_name = "DIR")]
    pub tensorboard: Option<PathBuf>,
}

impl TrainOptions {
    /// Every option at its command-line default (MNIST, ten epochs, ...).
    pub fn defaults() -> TrainOptions {
        let cmd = TrainOptions::augment_args(clap::Command::new("defaults"));
        let matches = cmd.get_matches_from(["defaults"]);
        clap::FromArgMatches::from_arg_matches(&matches).expect("every option has a default")
    }
}

impl WatchOptions {
    /// The default number of steps between two statistics records.
    pub const DEFAULT_EVERY: usize = 50;

    /// Steps between two records.
    pub fn every(&self) -> usize {
        self.stats_every.unwrap_or(Self::DEFAULT_EVERY)
    }

    /// Whether anything is watched.
    pub fn any(&self) -> bool {
        self.stats || self.tensorboard.is_some()
    }
}

#[derive(Args, Debug)]
pub struct TrainArgs {
    /// A preset (bn, plain, dropout, bn-dropout, bn-after-relu, cnn-bn, cnn-plain) or a model
    /// file (PyTorch's printed module, see examples/models).
    #[arg(long, default_value = "bn")]
    pub model: String,
    #[command(flatten)]
    pub opts: TrainOptions,
    #[command(flatten)]
    pub watch: WatchOptions,
    /// Folder for history.csv, history.json, history.png, last.safetensors, best.safetensors
    /// and checkpoint.safetensors [default: runs/train, or runs/train-2, -3, ... when that
    /// holds a run].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the run already in --out (its files are removed first).
    #[arg(long, requires = "out")]
    pub overwrite: bool,
    /// Continue the run in this folder from its checkpoint, with the options it was started
    /// with; --epochs N trains it to N epochs in all.
    #[arg(long, value_name = "OUT", conflicts_with_all = ["out", "model", "overwrite"])]
    pub resume: Option<PathBuf>,
    /// The ids of the arguments given on the command line (filled in after parsing).
    #[arg(skip)]
    pub given: Vec<String>,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// The model the weights are for: a preset (bn, plain, dropout, bn-dropout, bn-after-relu,
    /// cnn-bn, cnn-plain) or a model file.
    #[arg(long, default_value = "bn")]
    pub model: String,
    /// A safetensors state dict (from bnlab or PyTorch), or a run's checkpoint.safetensors
    /// (its model's weights are read).
    #[arg(long)]
    pub weights: PathBuf,
    /// The test set: mnist, fashion-mnist, cifar10, or csv (with --test-csv and --target).
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// --dataset csv: the standardize.json of the run that trained the weights [default: the
    /// one beside --weights].
    #[arg(long, value_name = "FILE")]
    pub standardize: Option<PathBuf>,
    /// --dataset csv: the table to evaluate on (standardised with the statistics saved with
    /// the weights).
    #[arg(long)]
    pub test_csv: Option<PathBuf>,
    /// --dataset csv: the column to predict.
    #[arg(long)]
    pub target: Option<String>,
    /// --dataset csv: the mode the weights were trained in (binary: one logit, targets 0/1).
    #[arg(long, value_enum, default_value_t = ModeName::Multi)]
    pub mode: ModeName,
    /// Examples per evaluation batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// How the loss is averaged: batch, the mean of the per-batch mean losses (the course's
    /// rule, as fit's lines: it depends a little on --batch-size); example, the mean over
    /// every example.
    #[arg(long, value_enum, default_value_t = LossMean::Batch)]
    pub loss_mean: LossMean,
    /// Print {"loss", "accuracy", "samples"}.
    #[arg(long)]
    pub json: bool,
    /// Matrix products and convolutions, forward and backward: f32, or bf16 (bfloat16
    /// operands, float32 sums, on the CPU's AVX512-BF16 or AMX units; refused on a CPU without
    /// them). Everything else, and the saved weights, stay float32.
    #[arg(long, value_enum, default_value_t = PrecisionName::F32)]
    pub precision: PrecisionName,
}

/// How `eval` averages the loss.
#[derive(Clone, Copy, Debug, Default, ValueEnum, PartialEq, Eq)]
pub enum LossMean {
    /// The mean of the per-batch mean losses (the course's `evaluate`).
    #[default]
    Batch,
    /// The mean over every example (independent of the batch size).
    Example,
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Seed of the uniform batch.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// A preset (bn, plain, dropout, bn-dropout, bn-after-relu, cnn-bn, cnn-plain).
    #[arg(long, default_value = "bn")]
    pub model: String,
    /// Examples per batch.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// Epochs to time (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub epochs: usize,
    /// Multiply the MLP presets' hidden widths (256-128-64) by this.
    #[arg(long, default_value_t = 1)]
    pub width: usize,
    /// Print one JSON line.
    #[arg(long)]
    pub json: bool,
    /// Time a table instead of MNIST: the training table (a header row, numeric columns; the
    /// MLP presets only, sized to its columns).
    #[arg(long, requires = "target")]
    pub train_csv: Option<PathBuf>,
    /// With --train-csv: the test table (same columns) [default: a seeded fifth of the rows].
    #[arg(long, requires = "train_csv")]
    pub test_csv: Option<PathBuf>,
    /// With --train-csv: the column to predict.
    #[arg(long, requires = "train_csv")]
    pub target: Option<String>,
    /// Matrix products and convolutions, forward and backward: f32, or bf16 (bfloat16
    /// operands, float32 sums, on the CPU's AVX512-BF16 or AMX units; refused on a CPU without
    /// them). Everything else, and the saved weights, stay float32.
    #[arg(long, value_enum, default_value_t = PrecisionName::F32)]
    pub precision: PrecisionName,
}

#[derive(Args, Debug)]
pub struct SummaryArgs {
    /// A preset (bn, plain, dropout, bn-dropout, bn-after-relu, cnn-bn, cnn-plain) or a model
    /// file.
    #[arg(long, default_value = "bn")]
    pub model: String,
    /// The input shape with its batch dimension (default 1,28,28; 1,1,28,28 for the CNNs);
    /// N,F sizes an MLP preset to F features, as on a table.
    #[arg(long)]
    pub input: Option<String>,
    /// With --input N,F: the MLP preset's outputs (a table's classes; 1 for --mode binary)
    /// [default: 10].
    #[arg(long)]
    pub outputs: Option<usize>,
    /// The precision the model would train in: bf16 adds a line under the table saying what
    /// runs in bfloat16 (torchinfo's sizes stay float32's, as bnlab keeps them).
    #[arg(long, value_enum, default_value_t = PrecisionName::F32)]
    pub precision: PrecisionName,
}

#[derive(Args, Debug)]
pub struct CompareArgs {
    /// Comma-separated presets or model files, e.g. bn,plain or bn,examples/models/bn-dropout.txt.
    #[arg(long, default_value = "bn,plain")]
    pub models: String,
    #[command(flatten)]
    pub opts: TrainOptions,
    /// Folder for compare.png and one folder of results per model [default: runs/compare, or
    /// runs/compare-2, -3, ... when that holds results].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the results already in --out (their files are removed first).
    #[arg(long, requires = "out")]
    pub overwrite: bool,
}

#[derive(Args, Debug)]
pub struct FoldArgs {
    /// A preset or a model file.
    #[arg(long, default_value = "bn")]
    pub model: String,
    /// The trained state dict (from bnlab or PyTorch).
    #[arg(long)]
    pub weights: PathBuf,
    /// Folder for folded.safetensors and model.txt (the folded model as PyTorch prints it).
    #[arg(long)]
    pub out: PathBuf,
    /// Replace folded.safetensors and model.txt in --out.
    #[arg(long)]
    pub overwrite: bool,
    /// The input shape the model is built for, with its batch dimension.
    #[arg(long)]
    pub input: Option<String>,
}

#[derive(Args, Debug)]
pub struct PredictArgs {
    /// A preset or a model file.
    #[arg(long, default_value = "bn")]
    pub model: String,
    /// The trained state dict.
    #[arg(long)]
    pub weights: PathBuf,
    /// What the model was trained on: mnist (images get MNIST's preparation), fashion-mnist or
    /// cifar10 (a plain resize).
    #[arg(long, default_value = "mnist")]
    pub dataset: String,
    /// One line of JSON per image: {"file", "top": [{"class", "name", "probability"}, ...]},
    /// or {"file", "error"} for an image that could not be read.
    #[arg(long)]
    pub json: bool,
    /// Write into this folder, for each image, the PNG the model actually saw (28 x 28, or
    /// 32 x 32 for CIFAR-10), named after the image.
    #[arg(long, value_name = "DIR")]
    pub show_input: Option<PathBuf>,
    /// PNG or JPEG files.
    #[arg(value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// A preset or a model file.
    #[arg(long, default_value = "bn")]
    pub model: String,
    /// The trained state dict.
    #[arg(long)]
    pub weights: PathBuf,
    /// The ONNX file to write.
    #[arg(long)]
    pub onnx: PathBuf,
    /// Fold every BatchNorm that can be folded into the layer beside it first.
    #[arg(long)]
    pub fold: bool,
    /// Replace --onnx if it exists.
    #[arg(long)]
    pub overwrite: bool,
    /// The input shape the model is built for (its batch dimension becomes dynamic).
    #[arg(long)]
    pub input: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExperimentArgs {
    #[command(subcommand)]
    pub which: ExperimentName,
}

/// Options every experiment takes.
#[derive(Args, Debug, Clone)]
pub struct ExperimentCommon {
    /// Folder for results.json, the figures and report.html [default: runs/NAME, or
    /// runs/NAME-2, -3, ... when that holds a result].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Replace the result already in --out.
    #[arg(long, requires = "out")]
    pub overwrite: bool,
    /// Seeds every initialisation and data order (one seed; see --seeds).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Run every arm once per seed: N (seeds 0 to N-1) or a list like 0,3,7. The table and
    /// report give means with 95% intervals and paired t-tests between arms.
    #[arg(long, conflicts_with = "seed")]
    pub seeds: Option<String>,
    /// Do only part K of N of the runs and write them to shard.json (merge the parts with
    /// `bnlab experiment merge`): K/N, auto (a Slurm job array) or auto/N (a Kubernetes
    /// Indexed Job of N completions).
    #[arg(long)]
    pub shard: Option<String>,
    /// Matrix products and convolutions, forward and backward: f32, or bf16 (bfloat16
    /// operands, float32 sums, on the CPU's AVX512-BF16 or AMX units; refused on a CPU without
    /// them). Everything else, and the saved weights, stay float32.
    #[arg(long, value_enum, default_value_t = PrecisionName::F32)]
    pub precision: PrecisionName,
}

#[derive(Subcommand, Debug)]
pub enum ExperimentName {
    /// Ioffe and Szegedy (2015), Figure 1: a sigmoid 784-100-100-100-10 MLP with and without
    /// BatchNorm, SGD, 50,000 steps of 60.
    Ioffe2015 {
        #[command(flatten)]
        common: ExperimentCommon,
        /// Training steps.
        #[arg(long, default_value_t = 50_000)]
        steps: usize,
        /// Steps between two evaluations on the test set.
        #[arg(long, default_value_t = 1_000)]
        every: usize,
    },
    /// The chapter's model with and without BatchNorm, plain SGD at learning rates 0.01 to 3:
    /// where each diverges.
    LrSweep {
        #[command(flatten)]
        common: ExperimentCommon,
        /// Comma-separated learning rates [default: 0.01,0.02,0.05,0.1,0.2,0.5,1,2,3].
        #[arg(long, value_delimiter = ',')]
        lrs: Option<Vec<f64>>,
        /// Epochs per run.
        #[arg(long, default_value_t = 2)]
        epochs: usize,
    },
    /// BatchNorm, GroupNorm, LayerNorm and no normalisation at batch sizes 2 to 256 on the
    /// same budget of examples (Wu and He 2018, Figure 1), and BatchNorm's train/eval gap.
    BatchSize {
        #[command(flatten)]
        common: ExperimentCommon,
        /// Comma-separated batch sizes [default: 2,4,8,16,32,64,128,256].
        #[arg(long, value_delimiter = ',')]
        batch_sizes: Option<Vec<usize>>,
        /// Training examples every run sees.
        #[arg(long, default_value_t = 60_000)]
        examples: usize,
    },
    /// BatchNorm before or after the activation, without it, with Dropout; and the variance
    /// shift Dropout before BatchNorm causes (Li et al. 2019).
    Placement {
        #[command(flatten)]
        common: ExperimentCommon,
        /// Epochs per model.
        #[arg(long, default_value_t = 5)]
        epochs: usize,
    },
    /// Santurkar et al. (2018), Figure 4: the loss and gradient along the gradient during
    /// training, with and without BatchNorm and with noisy BatchNorm, plain SGD.
    Smoothness {
        #[command(flatten)]
        common: ExperimentCommon,
        /// Training steps.
        #[arg(long, default_value_t = 1_500)]
        steps: usize,
        /// Steps between two walks along the gradient.
        #[arg(long, default_value_t = 50)]
        every: usize,
        /// Plain SGD's learning rate.
        #[arg(long, default_value_t = 0.1)]
        lr: f64,
    },
    /// Put the shards of one experiment (folders written with --shard) together: the same
    /// results.json, figure and report as one unsharded run.
    Merge {
        /// The shards' folders.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Folder for results.json, the figures and report.html.
        #[arg(long)]
        out: PathBuf,
        /// Replace the result already in --out.
        #[arg(long)]
        overwrite: bool,
    },
}

impl ExperimentName {
    /// The options every experiment takes (none for merge, which runs nothing).
    pub fn common(&self) -> Option<&ExperimentCommon> {
        match self {
            ExperimentName::Ioffe2015 { common, .. }
            | ExperimentName::LrSweep { common, .. }
            | ExperimentName::BatchSize { common, .. }
            | ExperimentName::Placement { common, .. }
            | ExperimentName::Smoothness { common, .. } => Some(common),
            ExperimentName::Merge { .. } => None,
        }
    }
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// A run's folder, as `bnlab train` writes it (history.json, history.png, weights).
    #[arg(value_name = "RUN_DIR")]
    pub run_dir: PathBuf,
    /// The HTML file to write [default: RUN_DIR/report.html].
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace --out if it exists (RUN_DIR/report.html, the default, is always replaced).
    #[arg(long, requires = "out")]
    pub overwrite: bool,
}

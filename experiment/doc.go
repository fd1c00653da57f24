// Package experiment runs a whole sgdyn experiment from Go: it trains a
// network with plain SGD to a reference point, surveys the curvature and
// the minibatch noise there, runs ensembles of SGD replicas from that point
// and writes the variance-growth report that classifies each probed
// direction as confined, diffusive, unstable or null. `sgdyn run` is a thin
// command line over it.
//
// # Config
//
// A Config is the YAML of the files in configs/: the training run (seed,
// model, data, sgd; see train.Config), and the hessian and ensemble
// sections. Load reads a shipped config by name ("quick", "lr-scan", ...)
// or a YAML file; Parse decodes YAML (strictly: an unknown key is an
// error); Default gives the defaults of a model kind to build one in Go.
//
// # Stages
//
// New binds a Config to a run directory after checking everything a stage
// could refuse (settings, data, batch sizes). The stages are methods of the
// Experiment; each reads what the previous ones wrote, and each skips or
// continues work already done, so rerunning after an interruption (a
// cancelled context: train.ErrInterrupted) loses nothing:
//
//  1. Train trains to sgd.steps, continuing from the run's last checkpoint
//     (train.Train); a complete run is left as it is.
//  2. Survey measures the Hessian (Lanczos eigenpairs, or all of them with
//     hessian.dense), certified flat and null directions and the gradient
//     and curvature noise at the reference point (probe.RunSurvey); it is
//     skipped when the run already holds a survey of that checkpoint with
//     the same settings.
//  3. Ensembles runs one ensemble per batch size, learning rate and
//     sampling scheme (EnsembleConfigs), projecting every replica's path on
//     the survey's directions (train.RunEnsemble); finished replicas are
//     skipped, interrupted ones resume from their checkpoints.
//  4. Report builds and writes the report (analysis/report).
//
// Run does all four under one lock. A stage holds the run directory's lock
// while it runs, so that a second writer in another process is refused at
// once; Options.Out receives what each stage did and Options.Progress the
// progress bars.
//
// # Example
//
//	name, c, err := experiment.Load("quick") // or Parse(yaml), or Default(kind) and set fields
//	if err != nil {
//		return err
//	}
//	e, err := experiment.New(c, filepath.Join("runs", name), experiment.Options{Out: os.Stdout, Progress: os.Stderr})
//	if err != nil {
//		return err
//	}
//	res, err := e.Run(ctx) // or e.Train(ctx), e.Survey(ctx), e.Ensembles(ctx), e.Report(ctx)
//	if err != nil {
//		return err // train.ErrInterrupted after a cancel: run again to continue
//	}
//	for _, ens := range res.Report.Ensembles {
//		fmt.Println(ens.Name, ens.Counts) // how many directions of each class
//	}
//
// Example and Example_customModel (example_test.go) run whole experiments
// on generated data.
//
// # The run directory
//
//	config.yaml        the resolved training config (it marks a run directory)
//	metrics.jsonl      loss and gradient norm per step, validation every eval_every
//	environment.json   the machine and program the run ran on
//	checkpoints/       step-NNNNNNNNN.npz parameters, .json their metadata
//	hessian/           the survey: spectrum.json, directions.npy and .json, noise.npz
//	ensemble/NAME/     manifest.json, per-replica logs, merged projections.npy,
//	                   loss.npy, distance.npy, steps.npy (train.LoadEnsemble)
//	report/index.html  the report, with its figures and summary.json
//
// # Your own model
//
// A network of your own runs through every stage when the config's model
// has kind custom and a name (models.KindCustom) and Options.NewModel
// builds it: for a Gorgonia graph, models.GraphModelFunc or a function
// calling models.FromGraph. Training, the survey's model instances and
// every ensemble replica are built with it. The run records the kind and
// the name, and refuses to be continued without the constructor. A graph
// built with the Graph's ReLU and MaxPool2D records its activation
// pattern, so the survey's Hessian-vector products hold it fixed and are
// exact (models.Piecewise).
//
//	c := experiment.Default(models.KindCustom)
//	c.Model = models.Config{Kind: models.KindCustom, Name: "my-net", DType: "float32"}
//	c.Data = train.DataConfig{Kind: "classification", Path: "table.csv"}
//	c.SGD.LR, c.SGD.Batch, c.SGD.Steps = 0.1, 32, 2000
//	e, err := experiment.New(c, "runs/my-net", experiment.Options{NewModel: models.GraphModelFunc(net, models.GraphOptions{})})
//
// # Building blocks
//
// The sgdyn commands that run one stage with flags of their own (train,
// hessian, ensemble, report) use the pieces the stages are made of: the
// survey's files (WriteSurvey, PrintSurvey, ReadDirections,
// LoadDirections), the ensemble names (SchemeName, Paired, SchemesNote),
// the report (WriteReport) and the run directory's locks (LockTraining,
// LockNew, LockShared, LockReport).
package experiment

/* cnnlite-train: train the report's network on an image folder (or the built-in synthetic
 * MRI set), printing the report's per-epoch lines, the best test accuracy and the metrics. */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#ifdef CNNL_WITH_MPI
#include <cnnlite/mpi.h>
#endif

#include "common.h"
#include "run.h"

static void usage(FILE *out)
{
    fprintf(out,
"usage: cnnlite-train [options]\n"
"Trains the report's CNN (4 conv blocks, 128-unit classifier) with Adam and cross-entropy,\n"
"evaluating on the test split after every epoch. stdout gets the report's lines:\n"
"  Epoch [1/15], Train Loss: ..., Train Accuracy: ...%%, Test Loss: ..., Test Accuracy: ...%%\n"
"  Best Test Accuracy: ...\n"
"then the confusion matrix and metrics of the final weights; progress goes to stderr.\n"
"Without --data, a demo runs on synthetic MRI-like images with batch normalisation\n"
"(%d images of %dx%d, %d epochs, unless --count, --size, --epochs, --difficulty or\n"
"--no-batchnorm say otherwise).\n"
"\n"
"  --data DIR         image folder DIR/<class>/<image> (default: built-in synthetic set)\n"
"  --arch FILE        train the network of a description (JSON, e.g. examples/nets/small.json)\n"
"                     instead of the report's; its input sets --size and --channels\n"
"  --count N          synthetic images to generate (default %d; only without --data)\n"
"  --difficulty D     synthetic set difficulty, 0 (easy) .. 1 (default %g; only without --data)\n"
"  --epochs N         epochs (default 15; demo %d)\n"
"  --batch N          batch size (default 32)\n"
"  --lr X             Adam learning rate (default 1e-3)\n"
"  --dropout P        dropout probability, 0 <= P < 1 (default 0.2)\n"
"  --batchnorm        batch normalisation after every convolution (default off; demo on)\n"
"  --no-batchnorm     no batch normalisation\n"
"  --size N           input size, a multiple of 32 (default 512; demo %d)\n"
"  --channels C       1 or 3 input channels (default 3, gray replicated)\n"
"  --split F          training fraction, 0 < F < 1 (default 0.8)\n"
"  --seed N           seed of initialisation, split, shuffling, dropout, augmentation (default 0)\n"
"  --threads N        compute threads (default: all processors)\n"
"  --memory-budget MB memory for decoded images; a larger folder is streamed from disk\n"
"                     by decoding threads (default: half of the physical memory)\n"
"  --precision P      fp32 (default) or bf16: bfloat16 inputs and weights inside the\n"
"                     convolutions, float32 master weights, accumulation and optimizer\n"
"                     (needs AVX512_BF16 or AMX and the oneDNN engine; an error otherwise,\n"
"                     and a note on CPUs where it cannot be faster than fp32)\n",
            DEMO_COUNT, DEMO_SIZE, DEMO_SIZE, DEMO_EPOCHS, DEMO_COUNT, DEMO_DIFFICULTY, DEMO_EPOCHS,
            DEMO_SIZE);
    fprintf(out,
"  --augment          random transforms of the training images, per image and epoch:\n"
"                     flip 0.5, rotate 10, scale 0.9..1.1, translate 0.05, roundtrip 0.3\n"
"                     (down to 0.4), blur 0.3 (sigma 2 at 512), gamma 0.5, contrast 0.4,\n"
"                     brightness 0.1, noise 0.05; each --aug-* below overrides one value\n"
"  --aug-flip P       probability of a horizontal flip\n"
"  --aug-rotate DEG   rotation uniform in +-DEG degrees\n"
"  --aug-scale-min F, --aug-scale-max F  zoom factor range (random resized crop when > 1)\n"
"  --aug-translate F  shift up to F of the size\n"
"  --aug-roundtrip P, --aug-roundtrip-min F  probability of a resolution round trip through\n"
"                     a side in [F * size, size]\n"
"  --aug-blur P, --aug-blur-sigma S  probability of a Gaussian blur of sigma up to S pixels\n"
"  --aug-gamma G      gamma log-uniform in [1/(1+G), 1+G]\n"
"  --aug-contrast C   contrast factor in [1-C, 1+C] about the image mean\n"
"  --aug-brightness B added brightness in [-B, B]\n"
"  --aug-noise S      Gaussian noise of standard deviation up to S (images in [0, 1])\n"
    );
    fprintf(out,
"  --optimizer NAME   adam (default), adamw (decoupled weight decay) or sgd\n"
"  --weight-decay X   weight decay (L2 for adam and sgd, decoupled for adamw; default 0)\n"
"  --momentum X       SGD momentum, 0 <= X < 1 (default 0)\n"
"  --schedule NAME    learning rate: constant (default), step (x lr-factor every step-size\n"
"                     epochs), cosine (warm-up, then cosine to 1%% of --lr), onecycle (--lr\n"
"                     is the peak), plateau (x lr-factor when the test/validation loss stalls\n"
"                     for more than plateau-patience epochs)\n"
"  --warmup N         cosine warm-up epochs (default 1)\n"
"  --step-size N      step schedule period in epochs (default 5)\n"
"  --lr-factor F      step and plateau reduction factor, 0 < F <= 1 (default 0.1)\n"
"  --plateau-patience N  epochs without improvement before a plateau reduction (default 2)\n"
"  --patience N       early stopping: stop after N epochs without a better test (validation)\n"
"                     accuracy and keep the best weights (default 0: off)\n"
"  --label-smoothing E  cross-entropy label smoothing, 0 <= E < 1 (default 0)\n"
"  --class-weights W  cross-entropy class weights: 'balanced' or one number per class, a,b,..\n"
"  --val F            hold out F of the training images for validation: epoch lines, early\n"
"                     stopping and schedules use it, the test split is only used at the end\n"
"  --sync-bn          under mpirun: batch norm with the statistics of the whole batch,\n"
"                     summed over all processes (default: each process's own part); no\n"
"                     effect in a single process\n"
"  --save FILE        save the final weights (safetensors with metadata)\n"
"  --save-best FILE   save the weights of the best test accuracy\n"
"  --checkpoint FILE  write a checkpoint after every epoch and on Ctrl-C\n"
"  --resume FILE      continue the run saved in a checkpoint (same options)\n"
"  --history FILE     per-epoch figures as CSV, or JSON if FILE ends in .json\n"
"  --plot FILE        SVG picture of the loss and accuracy curves\n"
"  --confusion-plot FILE  SVG picture of the final confusion matrix\n"
"  --quiet            no progress bar or informational messages on stderr\n"
"  --help             show this text\n"
"  --version          show the program's and the library's version\n");
}

static const struct option options[] = {
    CL_STD_OPTIONS,
    CL_FLAG("quiet"),
    RUN_COMMON_OPTIONS,
    RUN_TRAINING_OPTIONS,
    CL_ARG("save"),
    CL_ARG("save-best"),
    CL_ARG("checkpoint"),
    CL_ARG("resume"),
    CL_ARG("history"),
    CL_ARG("plot"),
    CL_ARG("confusion-plot"),
    CL_END_OPTIONS,
};

/* Returns 0 to go on, 1 after --help or --version, -1 on a bad option. */
static int parse(int argc, char **argv, run_config *c)
{
    cl_opt o;
    int r;
    while ((r = cl_next_option(argc, argv, options, &o)) > 0) {
        if (cl_std_option(&o, usage))
            return 1;
        if (cl_is(&o, "quiet")) {
            c->quiet = true;
            continue;
        }
        if ((r = run_common_option(&o, c)) != 0 || (r = run_training_option(&o, c)) != 0) {
            if (r < 0)
                return -1;
            continue;
        }
#define STR_OPT(name, field)      \
        if (cl_is(&o, name)) {    \
            c->field = o.value;   \
            continue;             \
        }
        STR_OPT("save", save)
        STR_OPT("save-best", save_best)
        STR_OPT("checkpoint", checkpoint)
        STR_OPT("resume", resume)
        STR_OPT("history", history)
        STR_OPT("plot", plot)
        STR_OPT("confusion-plot", confusion_plot)
#undef STR_OPT
    }
    if (r < 0)
        return -1;
    if (optind < argc) {
        cl_error("unexpected argument '%s'", argv[optind]);
        return -1;
    }
    return 0;
}

#ifdef CNNL_WITH_MPI
/* Started by an MPI launcher (mpirun, srun)? Then this process is one rank of a job. */
static bool launched_by_mpi(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]) != NULL)
            return true;
    return false;
}

/* Under an MPI launcher: one rank of a data-parallel run. Rank 0 prints and writes; the others
 * are quiet. An error on any rank ends the whole job with a message naming the rank, since
 * the other ranks would otherwise wait for it in the next collective. */
static int run_mpi(int argc, char **argv, run_config *c)
{
    if (MPI_Init(&argc, &argv) != MPI_SUCCESS) {
        cl_error("MPI_Init failed");
        return EXIT_FAIL;
    }
    cnnl_comm *comm = NULL;
    cnnl_status st = cnnl_mpi_comm_create(&comm, MPI_COMM_WORLD);
    if (st != CNNL_OK) {
        cl_fail("MPI", st);
        MPI_Abort(MPI_COMM_WORLD, EXIT_FAIL);
        return EXIT_FAIL;
    }
    static char prog[64];
    snprintf(prog, sizeof prog, "cnnlite-train (rank %d of %d)", comm->rank, comm->size);
    if (comm->size > 1)
        cl_prog = prog;
    c->comm = comm->size > 1 ? comm : NULL;
    if (comm->rank != 0) {
        c->quiet = true;
        c->print_epochs = c->print_metrics = false;
    }
    run_result res;
    int status = run_train(c, &res, stdout);
    run_result_free(&res);
    if (status != 0 && comm->size > 1) {
        char msg[128];
        snprintf(msg, sizeof msg, "%s: failed (status %d); stopping all %d processes", prog, status,
                 comm->size);
        comm->abort(comm, msg, status);
    }
    cnnl_mpi_comm_free(comm);
    MPI_Finalize();
    return status;
}
#endif

int main(int argc, char **argv)
{
    cl_init("cnnlite-train", "[options]");
    run_config c;
    run_config_default(&c);
    int r = parse(argc, argv, &c);
    if (r != 0)
        return r > 0 ? 0 : EXIT_USAGE;
    if (run_config_finish(&c) != 0)
        return EXIT_USAGE;
    if (run_check_outputs(&c) != 0)
        return EXIT_FAIL;
    cl_install_stop_handler();
#ifdef CNNL_WITH_MPI
    if (launched_by_mpi())
        return run_mpi(argc, argv, &c);
#endif
    run_result res;
    int status = run_train(&c, &res, stdout);
    run_result_free(&res);
    return status;
}

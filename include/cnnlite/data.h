/**
 * @file data.h
 * @brief Image-folder and synthetic datasets, the train/test split, and batch loaders.
 */
#ifndef CNNLITE_DATA_H
#define CNNLITE_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "export.h"
#include "status.h"
#include "tensor.h"

/**
 * @defgroup data Datasets, split and loaders
 * @brief Images in memory, a reproducible train/test split, and (N,C,H,W) batches.
 *
 * A dataset (::cnnl_dataset) is a list of labelled images held in memory, resized once to
 * size x size pixels and kept as 8-bit values (one byte per pixel for grayscale sources, three
 * for colour ones); they become float only when a batch is built. A dataset comes from an
 * image folder (cnnl_dataset_load_folder()) laid out as PyTorch's ImageFolder expects:
 * @code
 * root/glioma/img001.jpg
 * root/glioma/img002.jpg
 * root/notumor/...
 * @endcode
 * or from the built-in synthetic MRI generator (cnnl_dataset_synthetic()). A single image file
 * is prepared the same way by cnnl_image_load(), e.g. to classify it with a trained model. How
 * pixels become floats is one ::cnnl_normalization, shared with model files (@ref io).
 *
 * A split (::cnnl_split) divides a dataset into a training and a test subset, reproducibly
 * from a seed, and can be saved as a list of file names. A loader (::cnnl_loader) turns a
 * subset into batches: shuffled per epoch for training, in order for evaluation.
 *
 * Typical use:
 * @code
 * cnnl_dataset_opts o = cnnl_dataset_opts_default();
 * cnnl_dataset *ds; cnnl_split *sp; cnnl_loader *train;
 * cnnl_dataset_load_folder(&ds, "data/brain-tumor-mri", &o);
 * cnnl_split_opts so = cnnl_split_opts_default();
 * cnnl_split_create(&sp, ds, &so);
 * cnnl_loader_opts lo = cnnl_loader_opts_default();
 * lo.shuffle = true;
 * cnnl_loader_create(&train, ds, cnnl_split_indices(sp, CNNL_SUBSET_TRAIN),
 *                    cnnl_split_count(sp, CNNL_SUBSET_TRAIN), &lo);
 * for (int epoch = 0; epoch < 15; epoch++) {
 *     cnnl_loader_start_epoch(train, epoch);
 *     for (size_t b = 0; b < cnnl_loader_num_batches(train); b++) {
 *         const cnnl_tensor *x; const int32_t *y;
 *         cnnl_loader_batch(train, b, &x, &y);
 *         ...
 *     }
 * }
 * @endcode
 *
 * Handles are independent: distinct datasets, splits and loaders may be used from distinct
 * threads. A loader reads its dataset, so the dataset must outlive it; several loaders may
 * read one dataset at the same time.
 * @{
 */

/** Opaque dataset: labelled images in memory. */
typedef struct cnnl_dataset cnnl_dataset;
/** Opaque train/test split of a dataset. */
typedef struct cnnl_split cnnl_split;
/** Opaque batch loader over a subset of a dataset. */
typedef struct cnnl_loader cnnl_loader;

/** Most channels a #cnnl_normalization describes. */
#define CNNL_NORM_MAX_CHANNELS 4

/** How 8-bit pixel values v become floats. */
typedef enum cnnl_norm_kind {
    CNNL_NORM_UNIT = 0,     /**< v / 255, in [0, 1] (torchvision's ToTensor; the default). */
    CNNL_NORM_SYMMETRIC = 1,/**< v / 127.5 - 1, in [-1, 1] (Normalize(0.5, 0.5) after ToTensor). */
    CNNL_NORM_MEAN_STD = 2  /**< (v / 255 - mean[c]) / std[c] per channel c (Normalize(mean, std)). */
} cnnl_norm_kind;

/**
 * @brief Input normalization: how pixel values become the floats a network sees.
 *
 * The same description serves datasets (cnnl_dataset_opts::norm, cnnl_image_load()) and model
 * files (cnnl_save_opts::norm, cnnl_model_meta_normalization()), so the normalization a model
 * was trained with can be recorded and used again as it is:
 * @code
 * cnnl_dataset_opts o = cnnl_dataset_opts_default();
 * o.norm = (cnnl_normalization){CNNL_NORM_MEAN_STD, 3, {0.485f, 0.456f, 0.406f}, {0.229f, 0.224f, 0.225f}};
 * ... train on a dataset loaded with o ...
 * cnnl_save_opts so = cnnl_save_opts_default();
 * so.norm = &o.norm;
 * @endcode
 */
typedef struct cnnl_normalization {
    cnnl_norm_kind kind;                 /**< The scaling. */
    int channels;                        /**< Entries of @c mean and @c std in use: 1 to
                                              #CNNL_NORM_MAX_CHANNELS for #CNNL_NORM_MEAN_STD (for a
                                              dataset, its channel count), otherwise ignored (0 when read
                                              back from a file). */
    float mean[CNNL_NORM_MAX_CHANNELS];  /**< Per-channel mean, finite (#CNNL_NORM_MEAN_STD). */
    float std[CNNL_NORM_MAX_CHANNELS];   /**< Per-channel standard deviation, finite and > 0 (#CNNL_NORM_MEAN_STD). */
} cnnl_normalization;

/** Default limit on an image's declared width and height (see cnnl_dataset_opts::max_dim). */
#define CNNL_DATA_MAX_DIM 16384

/** Default limit on an image's declared pixel count, width x height (see
 *  cnnl_dataset_opts::max_pixels): Pillow's Image.MAX_IMAGE_PIXELS, 89478485. */
#define CNNL_DATA_MAX_PIXELS 89478485

/** Options of a dataset (see cnnl_dataset_opts_default()). */
typedef struct cnnl_dataset_opts {
    int size;        /**< Every image is resized to size x size pixels (default 512). */
    int channels;    /**< 3 (default): colour, grayscale replicated into R, G and B;
                          1: luma (stb_image's conversion for colour sources). */
    cnnl_normalization norm; /**< Float conversion of batches (default #CNNL_NORM_UNIT); for
                                  #CNNL_NORM_MEAN_STD, norm.channels must equal @c channels. */
    bool strict;     /**< false (default): skip bad files with one warning each and count them;
                          true: the first bad file or empty class folder is an error. */
    int max_dim;     /**< Files whose header declares a width or height above this are refused
                          before decoding (default #CNNL_DATA_MAX_DIM). */
    int64_t max_pixels; /**< Files whose header declares more pixels (width x height) than this
                             are refused before decoding; it also bounds the pixels decoded at
                             once over all loading threads (default #CNNL_DATA_MAX_PIXELS; 0
                             means the default, negative values are refused). */
    /** Memory for decoded images, in bytes (default 0: half of the physical memory). An image
     *  folder whose decoded images (count x size x size x channels bytes) fit is decoded once
     *  and kept in memory (cached); a larger one is streamed: every file is checked once when
     *  the folder is loaded (so the same files are skipped as in cached mode), and loaders
     *  decode and resize the images of the coming batches on worker threads into a bounded
     *  queue (at most a quarter of the budget, 2 to 4 batches), in the order of the epoch, so
     *  batches equal the cached mode's bit for bit. cnnl_dataset_summary() says which.
     *  Synthetic sets are always cached. */
    size_t memory_budget;
    /** Streamed folders only: skip the check of every file at load (default false). Every
     *  listed file is then used; one that cannot be decoded makes the batch that needs it fail
     *  with an error naming it. Each process of a data-parallel run then reads only the files
     *  of its own shards. */
    bool trust_files;
} cnnl_dataset_opts;

/** Options of the synthetic MRI generator (see cnnl_synthetic_opts_default()). */
typedef struct cnnl_synthetic_opts {
    size_t count;      /**< Number of images (default 1311), spread evenly over the four
                            classes; the first count % 4 classes get one more. */
    uint64_t seed;     /**< Everything follows from this seed (default 0). */
    float difficulty;  /**< 0 (obvious) .. 1 (hard), default 0.5: lowers tumour contrast and
                            size, adds faint tumours, more noise and more tumour-like bright
                            spots in tumour-free images. */
} cnnl_synthetic_opts;

/** Where the synthetic generator planted the tumour of one image (see cnnl_synthetic_tumour()). */
typedef struct cnnl_synthetic_region {
    bool present;  /**< false for a notumor image (the other fields are then 0). */
    float x;       /**< Centre, column in pixels (0 = centre of the first column). */
    float y;       /**< Centre, row in pixels (0 = centre of the first row). */
    float radius;  /**< Radius in pixels of a circle that covers the whole mass. */
} cnnl_synthetic_region;

/** Options of a train/test split (see cnnl_split_opts_default()). */
typedef struct cnnl_split_opts {
    double train_fraction; /**< Share of images for training, 0 < f < 1 (default 0.8). */
    uint64_t seed;         /**< Seed of the permutation (default 0). */
    bool stratified;       /**< Split every class separately with the same fraction (default false). */
} cnnl_split_opts;

/** Which part of a split. */
typedef enum cnnl_subset {
    CNNL_SUBSET_TRAIN = 0, /**< The training images. */
    CNNL_SUBSET_TEST = 1   /**< The test images. */
} cnnl_subset;

/**
 * @brief Per-image random transforms applied while batches are built (data augmentation).
 *
 * Every field at 0 turns its transform off (cnnl_augment_opts_default(): all off);
 * cnnl_augment_opts_preset() gives a sensible set for MRI slices from other scanners. The
 * transforms run in this order on the image in [0, 1] before normalization: horizontal flip,
 * one affine resampling (rotation, scale, shift; bilinear, black outside the image), resolution
 * round trip, Gaussian blur, gamma, contrast, brightness, Gaussian noise, clipping to [0, 1].
 * Each image's draws come from its own generator seeded by (loader seed, epoch, dataset index)
 * (stream #CNNL_RNG_AUGMENT), so a batch does not depend on the thread count, on the batch
 * order or on where a run was resumed.
 *
 * With @c full_strength every enabled transform is applied to every image at the end of its
 * range instead of a random draw (flip always; rotation +rotate_deg; scale scale_max; shift
 * 0; round trip to roundtrip_min; blur blur_sigma; gamma 1 + gamma; contrast 1 - contrast;
 * brightness +brightness; noise noise_std, still random per pixel): a fixed perturbation of a
 * test set (cnnlite-metrics --perturb).
 */
typedef struct cnnl_augment_opts {
    float flip_p;        /**< Probability of a horizontal flip, 0..1. */
    float rotate_deg;    /**< Rotation by an angle uniform in [-rotate_deg, rotate_deg] degrees, 0..180. */
    float scale_min;     /**< Zoom factor uniform in [scale_min, scale_max] (> 1 enlarges, a random
                              resized crop; < 1 shrinks); both 0 = off, else 0 < min <= max <= 4. */
    float scale_max;     /**< Upper end of the zoom factor (see @c scale_min). */
    float translate;     /**< Shift by up to this fraction of the size along x and y, 0..0.5. */
    float roundtrip_p;   /**< Probability of a resolution round trip, 0..1. */
    float roundtrip_min; /**< Round trip through a side drawn in [roundtrip_min * size, size]
                              (antialiased down, bilinear up), 0 < f <= 1 when roundtrip_p > 0. */
    float blur_p;        /**< Probability of a Gaussian blur, 0..1. */
    float blur_sigma;    /**< Blur standard deviation uniform in [0, blur_sigma] pixels, 0..20. */
    float gamma;         /**< Gamma exponent log-uniform in [1 / (1 + gamma), 1 + gamma], 0..4. */
    float contrast;      /**< Contrast factor uniform in [1 - contrast, 1 + contrast] about the image
                              mean, 0..1. */
    float brightness;    /**< Added brightness uniform in [-brightness, brightness], 0..1. */
    float noise_std;     /**< Gaussian noise with a standard deviation uniform in [0, noise_std], 0..1. */
    bool full_strength;  /**< Every enabled transform at full strength (see above). */
} cnnl_augment_opts;

/** Options of a batch loader (see cnnl_loader_opts_default()). */
typedef struct cnnl_loader_opts {
    int batch_size;  /**< Images per batch, >= 1 (default 32); the last batch may be smaller. */
    bool shuffle;    /**< Shuffle the order every epoch (default false: the given order). */
    uint64_t seed;   /**< Seed of the shuffling and of the augmentation (default 0). */
    /** Number of processes sharing every batch (default 1). With n > 1, batch b of the epoch
     *  order is the same global batch for every process, and cnnl_loader_batch() returns only
     *  this process's contiguous part of it: images [first + r*m/n, first + (r+1)*m/n) of its
     *  m images, for shard_index r. cnnl_loader_num_batches() still counts global batches. */
    int shard_count;
    int shard_index; /**< This process's part, 0..shard_count-1 (default 0). */
    cnnl_augment_opts augment; /**< Per-image random transforms (default: none). */
} cnnl_loader_opts;

CNNL_BEGIN_DECLS

/**
 * @brief Default dataset options: 512x512, 3 channels, [0,1], lenient, max_dim 16384,
 *        max_pixels #CNNL_DATA_MAX_PIXELS.
 * @return The defaults, by value.
 */
CNNL_API cnnl_dataset_opts cnnl_dataset_opts_default(void);

/**
 * @brief Default synthetic options: 1311 images, seed 0, difficulty 0.5.
 * @return The defaults, by value.
 */
CNNL_API cnnl_synthetic_opts cnnl_synthetic_opts_default(void);

/**
 * @brief Default split options: 80 % training, seed 0, not stratified.
 * @return The defaults, by value.
 */
CNNL_API cnnl_split_opts cnnl_split_opts_default(void);

/**
 * @brief Default loader options: batches of 32, no shuffling, seed 0, one shard, no augmentation.
 * @return The defaults, by value.
 */
CNNL_API cnnl_loader_opts cnnl_loader_opts_default(void);

/**
 * @brief No augmentation: every transform off.
 * @return The defaults, by value.
 */
CNNL_API cnnl_augment_opts cnnl_augment_opts_default(void);

/**
 * @brief The augmentation preset of `cnnlite-train --augment`.
 *
 * Flip 0.5, rotation +-10 degrees, scale 0.9..1.1, shift 0.05, round trip with probability 0.3
 * down to 0.4 of the size, blur with probability 0.3 up to sigma 2 (at 512 pixels; scaled
 * with @p size), gamma 0.5, contrast 0.4, brightness 0.1, noise up to 0.05: ranges that cover
 * the contrast, exposure, sharpness, noise, resolution and orientation of slices from other
 * scanners.
 * @param size The image size the preset is for (blur sigma scales with size / 512), >= 1.
 * @return The preset, by value.
 */
CNNL_API cnnl_augment_opts cnnl_augment_opts_preset(int size);

/**
 * @brief Load an image folder root/\<class\>/\<image\> into memory.
 *
 * Classes are the sub-folders of @p root, sorted by name (byte order); their index is the
 * label. Images are the files directly inside each class folder, sorted by name; sub-folders
 * of class folders are not searched, and names starting with '.' are ignored. Every format
 * stb_image decodes is accepted (JPEG baseline and progressive, PNG, BMP, GIF, PSD, TGA, PIC,
 * PNM, HDR), and DICOM files with uncompressed pixel data (explicit or implicit VR little
 * endian; one frame; MONOCHROME1, MONOCHROME2 or RGB; 8 or 16 bits, signed or not: wider or
 * signed samples are scaled so that the smallest negative value becomes 0 and the largest
 * 255, without the file's window) or baseline JPEG (decoded as JPEG files are; other
 * compressed transfer syntaxes are refused with a message saying so), and TIFF files when the library was built with libtiff (the first and only
 * page; 8-bit or narrower samples of any colour model libtiff renders; 16- and 32-bit
 * unsigned, signed or floating-point gray or RGB samples in strips, scaled as DICOM's). Each image is decoded (JPEG by libjpeg-turbo with Pillow's settings, the other
 * formats by stb_image) and resized to opts->size squared, once, on the library's threads.
 * Resizing is antialiased bilinear (a triangle filter widened by the scale factor when
 * shrinking) computed exactly as Pillow's Image.resize(size, BILINEAR), which torchvision
 * uses, so the pixels equal Pillow's. Grayscale files, and colour files whose three channels are equal
 * everywhere, are kept as one channel and replicated when batches are built. Files with 16-bit
 * samples (PNG, PSD, PNM with a maximum value above 255; scanners often store 12 bits in them)
 * are scaled to 8 bits by their own largest sample (v x 255 / max, rounded), so that such a
 * scan is neither almost black (stb_image keeps the high byte) nor white (Pillow's
 * convert("RGB") clips at 255); a full-range 16-bit file comes out within 1 of v / 257.
 *
 * Bad files (not a regular file, unreadable, empty, not an image, declared dimensions above
 * opts->max_dim or opts->max_pixels, a declared size the file cannot hold: fewer bytes than an
 * uncompressed layout needs, or more pixels than the format's largest compression ratio
 * allows, truncated or corrupt including JPEGs without their end marker, symbolic link
 * loops; stb_image itself refuses images of more than 2^30 bytes as "not an image") are
 * refused before decoding where the header tells. Out of memory while decoding is
 * #CNNL_ENOMEM, never a verdict on the file. The images decoded at once by all threads
 * together hold at most opts->max_pixels source pixels. Bad files and class folders without images are
 * each reported by one warning naming them (see cnnl_set_log_callback()) and counted in
 * cnnl_dataset_skipped(); with opts->strict the first of them, in file order, is an error
 * instead. An empty class keeps its label, so labels agree with other folders of the same
 * classes.
 *
 * @param[out] out Receives the dataset, owned by the caller (cnnl_dataset_free()); NULL on failure.
 * @param root The folder; the string is copied.
 * @param opts Options, or NULL for cnnl_dataset_opts_default().
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p out / @p root or a bad option; #CNNL_ENOTFOUND if
 *         @p root does not exist or is not a folder; #CNNL_EFORMAT if it has no class folders
 *         or no usable image, or (strict) a file is not a usable image; #CNNL_EIO if (strict) a
 *         file cannot be read (#CNNL_ENOTFOUND if it was removed while loading); #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_dataset_load_folder(cnnl_dataset **out, const char *root,
                                              const cnnl_dataset_opts *opts);

/**
 * @brief Generate synthetic MRI-like axial slices in memory.
 *
 * Four classes, named and ordered as the report's data: glioma, meningioma, notumor,
 * pituitary. Every image shows a skull ring, brain tissue with texture and noise and the
 * ventricles; a glioma is an irregular heterogeneous mass inside the brain, a meningioma a
 * well-defined bright round mass at the brain's edge, a pituitary tumour a small bright mass
 * at the lower centre, and notumor has none. Position, size, shape, contrast and rotation vary.
 * Image i depends only on (seed, i, count, size, difficulty), not on the thread count.
 * Items are ordered by class; item names are "\<class\>/synth_\<i\>.png", as written by
 * cnnl_dataset_write_folder().
 *
 * @param[out] out Receives the dataset, owned by the caller (cnnl_dataset_free()); NULL on failure.
 * @param syn Generator options, or NULL for cnnl_synthetic_opts_default().
 * @param opts Dataset options (size, channels, normalisation), or NULL for the defaults.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p out, count 0, difficulty outside [0,1] or a bad
 *         dataset option; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_dataset_synthetic(cnnl_dataset **out, const cnnl_synthetic_opts *syn,
                                            const cnnl_dataset_opts *opts);

/**
 * @brief Where cnnl_dataset_synthetic() planted the tumour of image @p index.
 *
 * The ground truth for checking explanations (e.g. cnnl_gradcam()): the same generator draws
 * as for the image itself, without rendering it.
 * @param syn The generator options the dataset was made with, or NULL for the defaults.
 * @param index Image index, below syn->count.
 * @param size The dataset's image size (cnnl_dataset_opts::size), >= 1.
 * @param[out] out Receives the region (caller-owned).
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL @p out, a size below 1 or bad options;
 *         #CNNL_ERANGE if @p index is out of range.
 */
CNNL_API cnnl_status cnnl_synthetic_tumour(const cnnl_synthetic_opts *syn, size_t index, int size,
                                           cnnl_synthetic_region *out);

/**
 * @brief Release a dataset. NULL is accepted and ignored.
 * @param ds The dataset, or NULL. No loader of it may be used afterwards.
 */
CNNL_API void cnnl_dataset_free(cnnl_dataset *ds);

/**
 * @brief Number of images.
 * @param ds The dataset.
 * @return The count, 0 if @p ds is NULL.
 */
CNNL_API size_t cnnl_dataset_count(const cnnl_dataset *ds);

/**
 * @brief Number of classes (including classes whose folder had no usable image).
 * @param ds The dataset.
 * @return The count, 0 if @p ds is NULL.
 */
CNNL_API int cnnl_dataset_num_classes(const cnnl_dataset *ds);

/**
 * @brief Name of a class.
 * @param ds The dataset.
 * @param label 0 .. cnnl_dataset_num_classes() - 1.
 * @return Borrowed string owned by @p ds (valid until it is freed); NULL if @p ds is NULL or
 *         @p label is out of range.
 */
CNNL_API const char *cnnl_dataset_class_name(const cnnl_dataset *ds, int label);

/**
 * @brief Number of images of one class.
 * @param ds The dataset.
 * @param label Class index.
 * @return The count, 0 if @p ds is NULL or @p label is out of range.
 */
CNNL_API size_t cnnl_dataset_class_count(const cnnl_dataset *ds, int label);

/**
 * @brief Label of an image.
 * @param ds The dataset.
 * @param index 0 .. cnnl_dataset_count() - 1.
 * @return The class index, or -1 if @p ds is NULL or @p index is out of range.
 */
CNNL_API int cnnl_dataset_label(const cnnl_dataset *ds, size_t index);

/**
 * @brief Name of an image relative to the root: "\<class\>/\<file\>".
 *
 * This is the name a saved split lists.
 * @param ds The dataset.
 * @param index 0 .. cnnl_dataset_count() - 1.
 * @return Borrowed string owned by @p ds (valid until it is freed); NULL if out of range.
 */
CNNL_API const char *cnnl_dataset_name(const cnnl_dataset *ds, size_t index);

/**
 * @brief Root folder a dataset was loaded from.
 * @param ds The dataset.
 * @return Borrowed string owned by @p ds; NULL for a synthetic dataset or a NULL @p ds.
 */
CNNL_API const char *cnnl_dataset_root(const cnnl_dataset *ds);

/**
 * @brief Number of files skipped as unusable, plus class folders without images.
 * @param ds The dataset.
 * @return The count (always 0 for a strict or synthetic dataset), 0 if @p ds is NULL.
 */
CNNL_API size_t cnnl_dataset_skipped(const cnnl_dataset *ds);

/**
 * @brief One-line description, e.g. "1311 images, 4 classes (glioma 300, ...), 512x512x3, 0 skipped".
 * @param ds The dataset.
 * @return Borrowed string owned by @p ds (valid until it is freed); "" if @p ds is NULL.
 */
CNNL_API const char *cnnl_dataset_summary(const cnnl_dataset *ds);

/**
 * @brief Image geometry of the batches: channels, height and width.
 * @param ds The dataset.
 * @param[out] channels Receives the channel count (may be NULL).
 * @param[out] size Receives the height (= width) (may be NULL).
 * @return #CNNL_OK or #CNNL_EINVAL if @p ds is NULL.
 */
CNNL_API cnnl_status cnnl_dataset_geometry(const cnnl_dataset *ds, int *channels, int *size);

/**
 * @brief Copy one image, normalised, into @p out as C x H x W floats.
 * @param ds The dataset.
 * @param index Image index.
 * @param[out] out Room for channels * size * size floats, written; not retained.
 * A streamed dataset (cnnl_dataset_opts::memory_budget) decodes the file again.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments; #CNNL_ERANGE if @p index is out of range;
 *         for a streamed dataset, the file's error (e.g. #CNNL_EIO) in a message naming it.
 */
CNNL_API cnnl_status cnnl_dataset_get(const cnnl_dataset *ds, size_t index, float *out);

/**
 * @brief The stored 8-bit pixels of one image (no normalisation, no channel replication).
 * @param ds The dataset.
 * @param index Image index.
 * @param[out] pixels Receives a borrowed pointer to size*size*channels bytes, interleaved
 *             (HWC), owned by @p ds and valid until it is freed.
 * @param[out] channels Receives 1 (grayscale source, or a 1-channel dataset) or 3.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments; #CNNL_ERANGE if @p index is out of range;
 *         #CNNL_EUNSUPPORTED for a streamed dataset (it keeps no pixels).
 */
CNNL_API cnnl_status cnnl_dataset_pixels(const cnnl_dataset *ds, size_t index,
                                         const uint8_t **pixels, int *channels);

/**
 * @brief The normalization a dataset's images are converted with.
 * @param ds The dataset.
 * @param[out] norm Receives a copy of the dataset's cnnl_dataset_opts::norm (channels 0 unless
 *             #CNNL_NORM_MEAN_STD), ready for cnnl_save_opts::norm.
 * @return #CNNL_OK; #CNNL_EINVAL if @p ds or @p norm is NULL.
 */
CNNL_API cnnl_status cnnl_dataset_normalization(const cnnl_dataset *ds, cnnl_normalization *norm);

/**
 * @brief Decode one image file as cnnl_dataset_load_folder() decodes each of its images.
 *
 * The same code as the folder loader's: the same checks (not a regular file, unreadable, empty,
 * not an image, declared dimensions above opts->max_dim or opts->max_pixels or beyond what the
 * file can hold, truncated or corrupt, symbolic link loops), the same resize to opts->size squared and the same conversion with opts->norm, so
 * the values equal those cnnl_dataset_get() gives for the same file in a dataset loaded with
 * the same options. Grayscale sources are replicated into every channel of a 3-channel result.
 * opts->strict is ignored: a bad file is always an error. Runs on the calling thread.
 *
 * @param[out] out Receives a new (1, C, H, W) tensor, C = opts->channels and H = W = opts->size,
 *             owned by the caller (cnnl_tensor_free()); NULL on failure.
 * @param path The image file.
 * @param opts Options, or NULL for cnnl_dataset_opts_default().
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p out / @p path or a bad option; #CNNL_ENOTFOUND if
 *         @p path does not exist; #CNNL_EIO if it cannot be read (including symbolic link
 *         loops); #CNNL_EFORMAT if it is not a usable image; #CNNL_ENOMEM when memory runs
 *         out (also while decoding a valid image). Every error message names @p path.
 */
CNNL_API cnnl_status cnnl_image_load(cnnl_tensor **out, const char *path, const cnnl_dataset_opts *opts);

/**
 * @brief cnnl_image_load() on an encoded image in memory (the bytes of a PNG, JPEG, ... file),
 * for programs that keep images in their own storage. The same checks, decoding, resize and
 * conversion as cnnl_image_load().
 * @param[out] out Receives a new (1, C, H, W) tensor, owned by the caller; NULL on failure.
 * @param data The encoded bytes; borrowed.
 * @param size Number of bytes.
 * @param name Name used in messages instead of a path (NULL: "(memory)").
 * @param opts Options, or NULL for cnnl_dataset_opts_default().
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p out / @p data or a bad option; #CNNL_EFORMAT if
 *         the bytes are not a usable image; #CNNL_ENOMEM. Every error message names @p name.
 */
CNNL_API cnnl_status cnnl_image_load_memory(cnnl_tensor **out, const void *data, size_t size, const char *name,
                                            const cnnl_dataset_opts *opts);

/**
 * @brief Write the stored images as an image folder dir/\<class\>/\<file\>.png.
 *
 * The file name is the image's name (cnnl_dataset_name()) with its extension replaced by
 * ".png". Every file is written to a temporary file in its folder, synced and renamed, so a
 * reader never sees a partial image. Folders are created as needed; existing files of the same
 * names are replaced. Loading @p dir again with the same size gives the same pixels.
 * @param ds The dataset.
 * @param dir Target folder (created if missing).
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments; #CNNL_EIO naming the file or folder that
 *         could not be written; #CNNL_ENOMEM; #CNNL_EUNSUPPORTED for a streamed dataset.
 */
CNNL_API cnnl_status cnnl_dataset_write_folder(const cnnl_dataset *ds, const char *dir);

/**
 * @brief Split a dataset into training and test subsets at random.
 *
 * The images are permuted with the seed (generator stream #CNNL_RNG_SPLIT) and cut as
 * PyTorch's random_split cuts fractions: each subset first gets floor(n * fraction) images,
 * then the images left over are dealt one at a time to the subsets in order, starting with
 * training. 1311 images at 0.8 give floor(1048.8) = 1048 and floor(262.2) = 262, plus the one
 * left over to training: 1049 / 262. Stratified, each class is permuted and cut that way on
 * its own (the totals can then differ by a few images from the unstratified cut).
 * The result depends only on the seed, the fraction, the stratified flag and the dataset's
 * list of names and labels; within each subset, indices are ascending.
 * @param[out] out Receives the split, owned by the caller (cnnl_split_free()); NULL on failure.
 * @param ds The dataset (borrowed during the call only).
 * @param opts Options, or NULL for cnnl_split_opts_default().
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments or a fraction outside (0, 1); #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_split_create(cnnl_split **out, const cnnl_dataset *ds,
                                       const cnnl_split_opts *opts);

/**
 * @brief Release a split. NULL is accepted and ignored.
 * @param split The split, or NULL.
 */
CNNL_API void cnnl_split_free(cnnl_split *split);

/**
 * @brief Number of images in a subset.
 * @param split The split.
 * @param which #CNNL_SUBSET_TRAIN or #CNNL_SUBSET_TEST.
 * @return The count; 0 if @p split is NULL or @p which is invalid.
 */
CNNL_API size_t cnnl_split_count(const cnnl_split *split, cnnl_subset which);

/**
 * @brief Dataset indices of a subset, ascending.
 * @param split The split.
 * @param which #CNNL_SUBSET_TRAIN or #CNNL_SUBSET_TEST.
 * @return Borrowed array of cnnl_split_count() indices, owned by @p split and valid until it is
 *         freed (not NULL even when the subset is empty, so that cnnl_loader_create() reports
 *         an empty selection instead of taking every image); NULL if @p split is NULL or
 *         @p which is invalid.
 */
CNNL_API const size_t *cnnl_split_indices(const cnnl_split *split, cnnl_subset which);

/**
 * @brief Save a split as a text file listing "train\<TAB\>name" and "test\<TAB\>name" lines.
 *
 * Names are those of cnnl_dataset_name(). The file is written to a temporary file in the same
 * folder, synced and renamed over @p path, so it is either the old or the complete new file.
 * @param split The split.
 * @param ds The dataset it was made from (borrowed during the call).
 * @param path Destination file.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments or a split that does not fit @p ds;
 *         #CNNL_EFORMAT if a name contains a line break; #CNNL_EIO naming @p path; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_split_save(const cnnl_split *split, const cnnl_dataset *ds,
                                     const char *path);

/**
 * @brief Restore a split saved by cnnl_split_save() against a dataset.
 *
 * Every listed name must be an image of @p ds. Images of @p ds that the file does not list
 * belong to neither subset; their number is reported by one warning.
 * @param[out] out Receives the split, owned by the caller (cnnl_split_free()); NULL on failure.
 * @param ds The dataset (borrowed during the call).
 * @param path The file.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments; #CNNL_EIO if @p path cannot be read;
 *         #CNNL_EFORMAT for a malformed line or a name listed twice (with the line number);
 *         #CNNL_ENOTFOUND naming the first listed file that is not in @p ds; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_split_load(cnnl_split **out, const cnnl_dataset *ds, const char *path);

/**
 * @brief Create a batch loader over some images of a dataset.
 * @param[out] out Receives the loader, owned by the caller (cnnl_loader_free()); NULL on failure.
 * @param ds The dataset; borrowed, must outlive the loader.
 * @param indices Dataset indices in their unshuffled order (copied, not retained), or NULL
 *        for every image of @p ds in order.
 * @param n Number of @p indices (ignored when @p indices is NULL).
 * @param opts Options, or NULL for cnnl_loader_opts_default().
 * @return #CNNL_OK; #CNNL_EINVAL for NULL @p out / @p ds, a batch size below 1, a shard
 *         count below 1 or a shard index outside it, an augmentation value outside its range
 *         (the message names the field) or an empty selection; #CNNL_ERANGE for an index
 *         outside the dataset; #CNNL_ENOMEM.
 */
CNNL_API cnnl_status cnnl_loader_create(cnnl_loader **out, const cnnl_dataset *ds,
                                        const size_t *indices, size_t n,
                                        const cnnl_loader_opts *opts);

/**
 * @brief Release a loader and its batch storage. NULL is accepted and ignored.
 * @param loader The loader, or NULL.
 */
CNNL_API void cnnl_loader_free(cnnl_loader *loader);

/**
 * @brief Set the order of epoch @p epoch.
 *
 * With shuffling the order is a permutation drawn from (seed, epoch) alone (generator stream
 * #CNNL_RNG_SHUFFLE), so a resumed run reproduces any epoch's order without saved generator
 * state; without shuffling it is the given order. A new loader starts in epoch 0.
 * @param loader The loader.
 * @param epoch Epoch number, >= 0.
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL @p loader or a negative @p epoch.
 */
CNNL_API cnnl_status cnnl_loader_start_epoch(cnnl_loader *loader, int epoch);

/**
 * @brief Number of images the loader covers per epoch.
 * @param loader The loader.
 * @return The count, 0 if @p loader is NULL.
 */
CNNL_API size_t cnnl_loader_count(const cnnl_loader *loader);

/**
 * @brief Number of batches per epoch: ceil(count / batch_size) (the last one may be partial).
 * @param loader The loader.
 * @return The count, 0 if @p loader is NULL.
 */
CNNL_API size_t cnnl_loader_num_batches(const cnnl_loader *loader);

/**
 * @brief Build batch @p b of the current epoch.
 *
 * Images are converted to float with the dataset's normalisation, grayscale replicated into
 * every channel, in parallel on the library's threads; with augmentation
 * (cnnl_loader_opts::augment) each image is transformed first, on the same threads. The batch storage belongs to the loader,
 * is allocated for a full batch by cnnl_loader_create() and reused: this call allocates nothing.
 * @param loader The loader.
 * @param b Batch index, 0 .. cnnl_loader_num_batches() - 1.
 * @param[out] images Receives a borrowed (n, C, H, W) tensor, owned by the loader and
 *             overwritten by the next call; n is the batch size, smaller for the last batch.
 * @param[out] labels Receives a borrowed array of n labels, owned by the loader, valid
 *             until the next call (may be NULL).
 * With cnnl_loader_opts::shard_count n > 1, the tensor holds only this process's part of the
 * global batch (see cnnl_loader_batch_sizes()); a part with no image is #CNNL_ERANGE.
 * @return #CNNL_OK; #CNNL_EINVAL for NULL arguments; #CNNL_ERANGE if @p b is out of range or
 *         this process's part of it is empty.
 */
CNNL_API cnnl_status cnnl_loader_batch(cnnl_loader *loader, size_t b, const cnnl_tensor **images,
                                       const int32_t **labels);

/**
 * @brief Sizes of global batch @p b and of this process's part of it.
 * @param loader The loader.
 * @param b Batch index, 0 .. cnnl_loader_num_batches() - 1.
 * @param[out] global Receives the images of the whole batch (every process's parts), or NULL.
 * @param[out] local Receives the images of this process's part (equal to *global without
 *             sharding; may be 0 for a last batch smaller than the shard count), or NULL.
 * @return #CNNL_OK; #CNNL_EINVAL for a NULL @p loader; #CNNL_ERANGE if @p b is out of range.
 */
CNNL_API cnnl_status cnnl_loader_batch_sizes(const cnnl_loader *loader, size_t b, size_t *global,
                                             size_t *local);

/**
 * @brief Dataset index of the @p i-th image of the current epoch's order.
 * @param loader The loader.
 * @param i Position, 0 .. cnnl_loader_count() - 1.
 * @return The dataset index, or SIZE_MAX if @p loader is NULL or @p i is out of range.
 */
CNNL_API size_t cnnl_loader_index(const cnnl_loader *loader, size_t i);

CNNL_END_DECLS

/** @} */

#endif /* CNNLITE_DATA_H */

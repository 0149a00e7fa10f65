"""All widget tooltips in one place, one dict per widget."""
from .core.igtt.config import IgttConfig
from .core.validate import IGNORE_VALUE

NOISY_LABELS: dict[str, str] = {
    "source": "Clean Labels layer (0 = background, 1..M-1 = classes). It is never modified.",
    "family": "sample: keep pixels with probability p, the rest become the ignore value (the paper). "
    "sample-to-background: unsampled foreground becomes background (the official code). "
    "flip: labels swap to another class. dilate / erode / morph: 3x3 morphology. skeleton: thin lines. "
    "random: foreground with probability p, ignoring the labels (rank-1 noise). misannotate / "
    "misclassify / drop-instances: whole objects get the target class, a random class, or are dropped.",
    "p": "sample: keep probability. flip: flip probability. random: foreground probability. "
    "misannotate / misclassify / drop-instances: probability per object.",
    "separate": "Binary flip with different rates for foreground -> background and background -> foreground.",
    "p_fg_to_bg": "Probability that a foreground pixel (1) becomes background (0).",
    "p_bg_to_fg": "Probability that a background pixel (0) becomes foreground (1).",
    "exact": "Change exactly round(p x count) pixels (or objects) per class instead of drawing each one.",
    "iterations": "Number of 3x3 dilation / erosion steps.",
    "ops": "Order of operations: 'd' = dilate, 'e' = erode; e.g. 'de' closes gaps, 'ed' removes specks.",
    "n_classes": "Number of classes M (0 = max label + 1). misclassify on binary labels needs 3 or more.",
    "target": "misannotate: the class that non-target objects are wrongly given.",
    "instances": "Optional instance-label layer that defines the objects; empty = connected components. "
    "For misannotate it may also hold objects that were not labelled.",
    "ignore_value": "Value of unlabelled pixels. It shows transparent and is left out of the matrix.",
    "per_frame": "Treat the first axes as frames / slices and work in 2D on each (else nD).",
    "seed": "Random seed: the same seed gives the same noisy labels. Stored in the layer metadata.",
    "live": "Update the preview layer a moment after each change.",
    "run_button": "Compute the preview now.",
    "keep_button": "Copy the current preview to a new layer, with its parameters and seed in the metadata.",
}

DENSITY: dict[str, str] = {
    "layers": "Labels layer(s) to map. Ctrl/Cmd-click to pick several. Each foreground class gets an "
              "Image layer '<labels> density' ('<labels> density c<k>' with several classes), updated in "
              "place; all maps of one update share one contrast range.",
    "reference": "Labels layer to compare with (e.g. the ground truth): the panel shows each layer's "
                 "transition matrix Q[reference, layer], its rank and the meta-structure similarity.",
    "bandwidth": "h in pixels: the box window is (2h+1) pixels wide per axis; for the Gaussian, sigma = h. "
                 "Around the size of the structures works best.",
    "kernel": "box: fraction of the window holding the class (the paper's Equation 8), zero padding "
              "outside the image. gaussian: smoother, sigma = h.",
    "live": "Recompute shortly after every change.",
    "run_button": "Recompute the density maps now.",
    "panel": "Similarity: noise-corrected Pearson correlation of the class densities against the "
             "reference (1 = same meta-structure, ~0 = none). Rank: rank of the empirical transition matrix.",
}

IGTT: dict[str, str] = {
    "images": "Image layer(s) to segment; no labels needed. Ctrl/Cmd-click to pick several: one model "
    "is trained on all of them and each gets its own '<image>_igtt' mask.",
    "slices": "For stacks and time-lapses: which slices along the first axis to train on, e.g. 'all' "
    "or '0-4,7'. Other slices stay empty until you use Predict.",
    "preset": f"fast: small network, {IgttConfig.epochs} epochs, stops early when the pseudo-labels settle; "
    "minutes on a CPU. paper: the official settings (deeper network, SGD, 100 epochs); best on a GPU.",
    "epochs": "Training rounds. Each epoch trains on the current pseudo-labels, then makes new ones "
    "from the network's prediction.",
    "preview_every": "Update the output layers every this many epochs. The last epoch always updates "
    "them. Larger values keep a slow computer more responsive.",
    "seed": "Seeds the network, crops, augmentation and EMS: the same seed gives the same result.",
    "encoder": "Network backbone, randomly initialised (nothing is downloaded). resnet18 is a good "
    "start on a CPU.",
    "encoder_depth": "Encoder stages (3 to 5). 3 is small and fast; the paper uses 5. Crops must be "
    "multiples of 2^depth.",
    "crop": "Side of the square training crops in pixels (a multiple of 2^depth, at most the image side).",
    "batch": "Crops per training step. Lower it if the GPU runs out of memory.",
    "lr": "Learning rate (Adam for 'fast', SGD with momentum for 'paper').",
    "steps": "Training steps per epoch; 0 = from the image size (the preset's coverage, at least its "
    "minimum number of steps).",
    "use_ems": "Refine each pseudo-label by EMS (skeletonise, jitter, keep 10% of the pixels), as in "
    "the paper. Untick for the paper's 'without EMS' ablation.",
    "leave_out_unsure": "Thin networks: pixels that a looser threshold (judged on the square root of the "
    "image) would add to the pseudo-labels are taught neither as structure nor as background, so dim "
    "tubules the threshold cut are not learnt as background. From epoch 2 with structure auto. Default on.",
    "selection": "Choose the pseudo-label threshold for each image (default), or one for the whole "
    "batch as the official code does.",
    "criterion": "How a threshold candidate is scored. image-otsu (default) judges the split on the "
    "image intensities and copes with sparse, hazy foreground; dmi is the paper's criterion.",
    "early_stop": "Stop when the pseudo-labels change by less than 3% (1 - Dice) for two epochs in a row.",
    "local_sigma": "Smallest window of the local contrast normalisation that evens out bright and dim "
                   "parts of a cell; iGTT widens it to twice the structures' width. 0 turns it off. In µm "
                   "when the images have a pixel size (their scale), else in px; the haze and EMS sizes "
                   "follow the same unit.",
    "scope": "How a 3D stack is read. Auto (default): a z-stack is one volume, normalised and thresholded "
    "as a whole, so planes above and below the cell stay empty; each time point is its own volume; a 2D "
    "time-lapse (axes TYX, from the file) keeps one threshold per frame. 2D slices: every plane alone.",
    "structure": "What you segment. Auto (default): decided from the first candidate; when most of it "
    "lies off its skeleton band the run uses thick objects, else thin network; the progress line and "
    "the layer metadata say which. Thin network (ER tubules): the paper's EMS, which samples the "
    "skeleton. Thick objects (mitochondria, nuclei, puncta): EMS also samples their interior at the "
    "same rate, so the network learns whole objects, not a band along their centre line.",
}

ROUGH_LABELS: dict[str, str] = {
    "image": "The greyscale image to segment (2D, or a stack / time-lapse trained slice by slice).",
    "labels": "Rough labels with the image's shape: 0 = background, 1..M = classes, and the ignore value "
    "for pixels that were not annotated. Output of the 'Noisy labels' widget works as is.",
    "ignore_value": f"Label value left out of training ({IGNORE_VALUE} = 'not sampled' in the 'Noisy labels' "
    "widget).",
    "scribbles": "Scribble mode: 0 means 'not annotated' and is ignored; paint class 1 (e.g. background) "
    "and class 2 (e.g. foreground) where you are sure.",
    "slices": "For stacks: which slices along the first axis to train on, e.g. 'all' or '0-4,7'. "
    "Predict segments every slice afterwards.",
    "arch": "U-Net keeps fine detail (thin ER tubules); DeepLabV3+ is coarser but sees more context.",
    "encoder": "Network backbone, randomly initialised (nothing is downloaded). resnet18 is a good "
    "start on a CPU; mobilenet_v2 is smaller and faster.",
    "loss": "auto = BCE for 0/1 labels, cross-entropy for several classes. Bootstrapping and DMI are "
    "noise-robust losses; 'exponential on unlabelled' is for incomplete annotation.",
    "epochs": "Training rounds of 'steps per epoch' batches each (default 10 x 25: about a minute on a CPU "
              "for a 512 x 512 image).",
    "preview_every": "Update the output layers every this many epochs (0 = only at the end). The last "
    "epoch always updates them.",
    "seed": "Seeds the weights, crops and augmentations: the same seed gives the same run.",
    "encoder_depth": "Encoder stages (3 to 5). 3 is small and fast; crops must be multiples of 2^depth.",
    "crop": "Side of the square training crops in pixels (a multiple of 2^depth, at most the image side).",
    "batch": "Crops per training step. Lower it if the GPU runs out of memory.",
    "lr": "Adam learning rate. Lower it if the loss jumps or becomes NaN.",
    "steps": "Training steps (batches) per epoch; 0 = enough crops to cover the image about once.",
    "warmup": "Epochs trained with plain BCE / cross-entropy before switching to the chosen loss.",
    "augment": "Random flips and 90-degree rotations of the training crops.",
}

COMMON: dict[str, str] = {
    "device": "Where training and prediction run. 'auto' takes the first CUDA GPU, then an Apple GPU "
    "(mps), then the CPU. The line below says what will run and why.",
    "clear_previous": "On Run, replace this widget's earlier results for the same images (other images' "
    "results stay). Untick to keep them for comparison (new outputs then get names like 'cells_igtt [2]').",
    "run": "Train in the background. The mask and probability layers update while it runs.",
    "stop": "End the run after the current batch. The last prediction shown and the model at that "
    "point are kept.",
    "progress": "Epochs done out of the planned number; elapsed and estimated remaining time below.",
    "save_model": "Save the current model (weights, settings, version and history) to one .pt file.",
    "load_model": "Load a model saved by this plugin; then use Predict on any image layer.",
    "export_bioimageio": "Write the current model as a bioimage.io model package (.zip) that deepImageJ, ilastik "
                         "and QuPath run; needs pip install \"napari-metastructures[bioimageio]\". iGTT "
                         "calibration is not included (docs/bioimageio.md).",
    "predict_on": "The image layer that Predict segments with the current model (all of its slices).",
    "predict": "Segment the 'predict on' layer with the current model (trained or loaded). Output goes "
    "to '<image>_<suffix>' and '<image>_<suffix>_prob'.",
    "predict_folder": "Segment every TIFF file of a folder with the current model, one file at a time, "
    "into an output folder you choose: <name>_mask.tif, <name>_prob.tif and run.json, as "
    "'metastructures predict' writes them. A bad file is listed and the others go on; Stop keeps "
    "the files already written. The first result opens here.",
    "export_mask": "Write the latest mask layer as TIFF with its pixel size, plus a JSON file of the "
    "parameters beside it. Several masks go into a folder.",
    "plot": "Blue: training loss per epoch. Orange: foreground fraction in % (pseudo-labels for iGTT, "
    "predictions for rough labels). The iGTT loss is -log(det) + IoU loss: it is negative, and "
    "lower is better; a flat orange line means the pseudo-labels have settled.",
}

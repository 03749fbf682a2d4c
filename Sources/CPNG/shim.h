#ifndef KILN_CPNG_SHIM_H
#define KILN_CPNG_SHIM_H
// libpng's classic API reports errors by longjmp, which Swift cannot host. These static inline
// wrappers keep every setjmp/longjmp pair inside one C frame and return a status code with the
// libpng message instead, so a corrupt file is an error value, never a crash.
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

/// Largest image Kiln decodes: a hostile header cannot make it allocate more than this many pixels.
#define KILN_PNG_MAX_PIXELS ((png_uint_32)1 << 28)
#define KILN_PNG_MAX_SIDE ((png_uint_32)1 << 16)

typedef struct {
    jmp_buf jump;
    char message[256];
} kiln_png_error_state;

static void kiln_png_on_error(png_structp png, png_const_charp message) {
    kiln_png_error_state *state = (kiln_png_error_state *)png_get_error_ptr(png);
    strncpy(state->message, message ? message : "unknown libpng error", sizeof(state->message) - 1);
    state->message[sizeof(state->message) - 1] = 0;
    longjmp(state->jump, 1);
}

static void kiln_png_on_warning(png_structp png, png_const_charp message) {
    (void)png; (void)message;  // Warnings (bad ancillary CRCs, unknown chunks) are not errors.
}

// MARK: - Writing to memory

typedef struct {
    unsigned char *data;
    size_t size;
    size_t capacity;
} kiln_png_buffer;

static void kiln_png_write_to_buffer(png_structp png, png_bytep bytes, png_size_t length) {
    kiln_png_buffer *buffer = (kiln_png_buffer *)png_get_io_ptr(png);
    if (buffer->size + length > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 4096;
        while (capacity < buffer->size + length) capacity *= 2;
        unsigned char *grown = (unsigned char *)realloc(buffer->data, capacity);
        if (!grown) png_error(png, "out of memory while encoding PNG");
        buffer->data = grown;
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->size, bytes, length);
    buffer->size += length;
}

static void kiln_png_flush_buffer(png_structp png) { (void)png; }

/// Encodes `rows` (top row first, `rowBytes` apart) as a PNG in `*out` (caller frees `out->data`).
/// colorType: PNG_COLOR_TYPE_GRAY / RGB / RGB_ALPHA / GRAY_ALPHA; bitDepth 8 or 16 (16-bit samples
/// in native byte order). Text chunks are written as uncompressed UTF-8 iTXt before the image data.
/// Returns 1 on success, 0 on failure with the reason in `message`.
static int kiln_png_encode(const unsigned char *pixels, png_uint_32 width, png_uint_32 height,
                           int colorType, int bitDepth, size_t rowBytes,
                           const char *const *keys, const char *const *values, int textCount,
                           kiln_png_buffer *out, char *message, size_t messageCapacity) {
    kiln_png_error_state state;
    state.message[0] = 0;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &state, kiln_png_on_error,
                                              kiln_png_on_warning);
    if (!png) { strncpy(message, "cannot create libpng write struct", messageCapacity); return 0; }
    png_infop info = png_create_info_struct(png);
    png_textp volatile text = NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        strncpy(message, "cannot create libpng info struct", messageCapacity);
        return 0;
    }
    if (setjmp(state.jump)) {
        png_destroy_write_struct(&png, &info);
        free((void *)text);
        free(out->data); out->data = NULL; out->size = out->capacity = 0;
        strncpy(message, state.message, messageCapacity);
        return 0;
    }
    png_set_write_fn(png, out, kiln_png_write_to_buffer, kiln_png_flush_buffer);
    png_set_IHDR(png, info, width, height, bitDepth, colorType, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (textCount > 0) {
        text = (png_textp)calloc((size_t)textCount, sizeof(png_text));
        if (!text) png_error(png, "out of memory for PNG text chunks");
        for (int i = 0; i < textCount; i++) {
            text[i].compression = PNG_ITXT_COMPRESSION_NONE;
            text[i].key = (png_charp)keys[i];
            text[i].text = (png_charp)values[i];
            text[i].text_length = 0;
            text[i].itxt_length = strlen(values[i]);
            text[i].lang = NULL;
            text[i].lang_key = NULL;
        }
        png_set_text(png, info, text, textCount);
    }
    png_write_info(png, info);
    if (bitDepth == 16) {
        const unsigned short probe = 1;
        if (*(const unsigned char *)&probe == 1) png_set_swap(png);  // PNG stores big-endian.
    }
    for (png_uint_32 y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(pixels + (size_t)y * rowBytes));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free((void *)text);
    return 1;
}

// MARK: - Reading from memory

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
} kiln_png_source;

static void kiln_png_read_from_source(png_structp png, png_bytep bytes, png_size_t length) {
    kiln_png_source *source = (kiln_png_source *)png_get_io_ptr(png);
    if (length > source->size - source->offset) png_error(png, "unexpected end of file (truncated PNG)");
    memcpy(bytes, source->data + source->offset, length);
    source->offset += length;
}

typedef struct {
    png_uint_32 width;
    png_uint_32 height;
    int bitDepth;        // of the file
    int colorType;       // of the file
    int interlaced;
    unsigned short *rgba16;  // width*height*4 samples, native byte order; caller frees
    char *text;              // textCount pairs "key\0value\0"; caller frees
    size_t textBytes;
    int textCount;
} kiln_png_decoded;

/// Decodes any PNG (palette, gray, alpha, 1–16 bits, interlaced) into 16-bit RGBA without gamma
/// changes: 8-bit samples v become v·257, so v = sample >> 8 recovers them exactly.
/// Returns 1 on success, 0 with the reason in `message`.
static int kiln_png_decode(const unsigned char *bytes, size_t size, kiln_png_decoded *out,
                           char *message, size_t messageCapacity) {
    memset(out, 0, sizeof(*out));
    if (size < 8 || png_sig_cmp((png_const_bytep)bytes, 0, 8) != 0) {
        strncpy(message, "not a PNG file (bad signature)", messageCapacity);
        return 0;
    }
    // libpng allocates a text chunk's buffer from its length field before reading it. The whole
    // file is in memory, so check every chunk's length against the bytes that follow first.
    for (size_t at = 8; at < size;) {
        if (size - at < 12) {
            snprintf(message, messageCapacity, "truncated PNG: %zu stray bytes after the last chunk", size - at);
            return 0;
        }
        png_uint_32 length = png_get_uint_32(bytes + at);
        if (length > PNG_UINT_31_MAX || (size_t)length > size - at - 12) {
            snprintf(message, messageCapacity, "truncated or corrupt PNG: chunk '%.4s' at byte %zu declares %u bytes but %zu remain",
                     (const char *)(bytes + at + 4), at, (unsigned)length, size - at - 12);
            return 0;
        }
        if (memcmp(bytes + at + 4, "IEND", 4) == 0) break;
        at += 12 + (size_t)length;
    }
    kiln_png_error_state state;
    state.message[0] = 0;
    kiln_png_source source = { bytes, size, 0 };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &state, kiln_png_on_error,
                                             kiln_png_on_warning);
    if (!png) { strncpy(message, "cannot create libpng read struct", messageCapacity); return 0; }
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        strncpy(message, "cannot create libpng info struct", messageCapacity);
        return 0;
    }
    png_bytep *volatile rows = NULL;
    if (setjmp(state.jump)) {
        png_destroy_read_struct(&png, &info, NULL);
        free((void *)rows);
        free(out->rgba16); out->rgba16 = NULL;
        free(out->text); out->text = NULL;
        strncpy(message, state.message, messageCapacity);
        return 0;
    }
    png_set_read_fn(png, &source, kiln_png_read_from_source);
    png_set_user_limits(png, KILN_PNG_MAX_SIDE, KILN_PNG_MAX_SIDE);
    // An ancillary chunk's length field is trusted by libpng's allocator: cap what one chunk
    // (or its decompressed text) may take. Over-long ancillary chunks are skipped with a warning.
    png_set_chunk_malloc_max(png, (png_alloc_size_t)16 << 20);
    png_set_benign_errors(png, 1);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if ((unsigned long long)width * height > KILN_PNG_MAX_PIXELS)
        png_error(png, "image is larger than Kiln's limit of 2^28 pixels");
    // Deflate expands at most ~1032:1, so a file cannot hold more raw image bytes than about
    // 1100 × its size: refuse before allocating for a header that promises more.
    unsigned long long rawRowBytes = ((unsigned long long)width * png_get_channels(png, info)
                                      * png_get_bit_depth(png, info) + 7) / 8;
    if ((unsigned long long)height * (rawRowBytes + 1) > 1100ULL * size + 65536ULL)
        png_error(png, "declares far more pixels than the file's data can hold (truncated or corrupt)");
    out->width = width;
    out->height = height;
    out->bitDepth = png_get_bit_depth(png, info);
    out->colorType = png_get_color_type(png, info);
    out->interlaced = png_get_interlace_type(png, info) != PNG_INTERLACE_NONE;

    png_set_expand(png);        // palette → RGB, gray < 8 bits → 8, tRNS → alpha
    png_set_expand_16(png);     // 8-bit → 16-bit (v·257)
    png_set_gray_to_rgb(png);
    png_set_add_alpha(png, 0xffff, PNG_FILLER_AFTER);
    {
        const unsigned short probe = 1;
        if (*(const unsigned char *)&probe == 1) png_set_swap(png);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)width * 8) png_error(png, "unexpected row layout after expansion");

    out->rgba16 = (unsigned short *)malloc((size_t)width * height * 8 + 8);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * (size_t)(height ? height : 1));
    if (!out->rgba16 || !rows) png_error(png, "out of memory decoding PNG");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = (png_bytep)(out->rgba16 + (size_t)y * width * 4);
    png_read_image(png, rows);
    png_read_end(png, info);

    png_textp text = NULL;
    int count = png_get_text(png, info, &text, NULL);
    size_t total = 0;
    for (int i = 0; i < count; i++) {
        size_t length = text[i].compression > 0 ? text[i].itxt_length : text[i].text_length;
        total += strlen(text[i].key) + 1 + length + 1;
    }
    if (count > 0) {
        out->text = (char *)malloc(total);
        if (!out->text) png_error(png, "out of memory for PNG text");
        size_t at = 0;
        for (int i = 0; i < count; i++) {
            size_t keyLength = strlen(text[i].key);
            size_t length = text[i].compression > 0 ? text[i].itxt_length : text[i].text_length;
            memcpy(out->text + at, text[i].key, keyLength + 1); at += keyLength + 1;
            if (length) memcpy(out->text + at, text[i].text, length);
            at += length;
            out->text[at++] = 0;
        }
        out->textBytes = total;
        out->textCount = count;
    }
    png_destroy_read_struct(&png, &info, NULL);
    free((void *)rows);
    return 1;
}
#endif
